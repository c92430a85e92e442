// HTTP calls to the server. Every failure becomes an ApiError in the API's one error shape,
// so the page can show the plain message and keep the code and detail for the expandable part.

export class ApiError extends Error {
  constructor({ code, message, detail = "", status = 0, taskId = null }) {
    super(message);
    this.code = code;
    this.detail = detail;
    this.status = status;
    this.taskId = taskId;
  }
}

const NETWORK_MESSAGE = "The server could not be reached. Check the connection and try again.";

function fromBody(status, body, fallback) {
  const error = body && typeof body === "object" ? body.error : null;
  if (error && typeof error.code === "string") {
    return new ApiError({
      code: error.code,
      message: error.message || fallback,
      detail: error.detail || "",
      status,
      taskId: error.task_id || null,
    });
  }
  return new ApiError({ code: `HTTP_${status}`, message: fallback, detail: "", status });
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  headers(extra = {}) {
    return this.token ? { ...extra, Authorization: `Bearer ${this.token}` } : extra;
  }

  // For places where the browser cannot send a header: <audio src>, download links.
  url(path) {
    if (!this.token) return path;
    const sep = path.includes("?") ? "&" : "?";
    return `${path}${sep}token=${encodeURIComponent(this.token)}`;
  }

  wsUrl(path) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${this.url(path)}`;
  }

  async request(method, path, { json, signal } = {}) {
    const init = { method, headers: this.headers(), signal, cache: "no-store" };
    if (json !== undefined) {
      init.headers = this.headers({ "Content-Type": "application/json" });
      init.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (exc) {
      if (exc.name === "AbortError") throw exc;
      throw new ApiError({ code: "NETWORK", message: NETWORK_MESSAGE, detail: String(exc) });
    }
    if (response.status === 204) return null;
    let body = null;
    try {
      body = await response.json();
    } catch (exc) {
      if (exc.name === "AbortError") throw exc;
      body = null;
    }
    if (!response.ok) {
      throw fromBody(response.status, body, `The server answered ${response.status}.`);
    }
    return body;
  }

  get(path, options) {
    return this.request("GET", path, options);
  }

  post(path, json) {
    return this.request("POST", path, { json });
  }

  delete(path) {
    return this.request("DELETE", path);
  }

  // PUT the file with XMLHttpRequest: fetch() cannot report upload progress.
  // Returns {promise, abort}; onProgress(loaded, total) is called as bytes leave the browser.
  putFile(path, file, onProgress) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise((resolve, reject) => {
      xhr.open("PUT", path);
      for (const [name, value] of Object.entries(this.headers())) xhr.setRequestHeader(name, value);
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      xhr.upload.onprogress = (event) => {
        onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
      };
      xhr.onload = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else reject(fromBody(xhr.status, body, `The server answered ${xhr.status}.`));
      };
      xhr.onerror = () =>
        reject(
          new ApiError({
            code: "UPLOAD_INCOMPLETE",
            message: "The upload was cut off before the whole file arrived.",
            detail: "XMLHttpRequest network error",
          }),
        );
      xhr.onabort = () =>
        reject(new ApiError({ code: "CANCELLED", message: "The upload was stopped.", detail: "" }));
      xhr.send(file);
    });
    return { promise, abort: () => xhr.abort() };
  }
}
