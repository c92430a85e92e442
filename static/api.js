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

// Where the server wants a token, the page signs in once (POST /api/session) and the
// browser carries the HttpOnly session cookie on every request, WebSocket, <audio> and link
// alike: the token never goes into a URL. onUnauthorized runs when the server stops taking
// the cookie (a changed token), so the page can ask again.
export class Api {
  constructor({ onUnauthorized = () => {} } = {}) {
    this.onUnauthorized = onUnauthorized;
  }

  wsUrl(path) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${path}`;
  }

  async request(method, path, { json, signal, headers = {} } = {}) {
    const init = {
      method,
      headers: { ...headers },
      signal,
      cache: "no-store",
      credentials: "same-origin",
    };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
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
      if (response.status === 401 && path !== "/api/session") this.onUnauthorized();
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
