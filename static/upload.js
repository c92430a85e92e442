// The upload form: options, the file picker and drag-and-drop, and the two-step upload
// (POST /api/tasks with JSON, then PUT /api/tasks/{id}/audio with XMLHttpRequest for progress).

import { errorBlock, h } from "./dom.js";
import { STAGE } from "./stages.js";

export class UploadForm {
  constructor({ form, input, drop, errors, api, tasks, onCreated }) {
    this.form = form;
    this.input = input;
    this.drop = drop;
    this.errors = errors;
    this.api = api;
    this.tasks = tasks;
    this.onCreated = onCreated;
    this.queue = Promise.resolve();
    this.diarize = form.elements.diarize;
    this.speakerFields = ["num_speakers", "min_speakers", "max_speakers"].map(
      (name) => form.elements[name],
    );
  }

  start() {
    this.form.addEventListener("submit", (event) => event.preventDefault());
    this.input.addEventListener("change", () => {
      this.submit([...this.input.files]);
      this.input.value = "";
    });
    this.diarize.addEventListener("change", () => this.syncSpeakers());
    this.syncSpeakers();
    for (const name of ["dragenter", "dragover"]) {
      this.drop.addEventListener(name, (event) => {
        event.preventDefault();
        this.drop.classList.add("dragging");
      });
    }
    for (const name of ["dragleave", "drop"]) {
      this.drop.addEventListener(name, (event) => {
        event.preventDefault();
        this.drop.classList.remove("dragging");
      });
    }
    this.drop.addEventListener("drop", (event) => {
      this.submit([...(event.dataTransfer?.files || [])]);
    });
    // A file dropped outside the drop zone must not replace the page.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
  }

  syncSpeakers() {
    for (const field of this.speakerFields) field.disabled = !this.diarize.checked;
  }

  options() {
    const elements = this.form.elements;
    const options = { diarize: this.diarize.checked };
    if (elements.language.value) options.language = elements.language.value;
    for (const name of ["hotwords", "initial_prompt"]) {
      const value = elements[name].value.trim();
      if (value) options[name] = value;
    }
    if (this.diarize.checked) {
      for (const field of this.speakerFields) {
        if (field.value !== "") options[field.name] = Number(field.value);
      }
    }
    return options;
  }

  showError(error, filename) {
    const block = errorBlock(error, { role: "alert" });
    if (filename) block.prepend(h("strong", {}, filename));
    this.errors.append(block);
  }

  async submit(files) {
    if (!files.length) return;
    this.errors.replaceChildren();
    if (!this.form.reportValidity()) return;
    const options = this.options();
    const created = [];
    for (const file of files) {
      try {
        const body = { filename: file.name, size: file.size, options };
        const snap = await this.api.post("/api/tasks", body);
        this.tasks.apply(snap);
        this.tasks.setUpload(snap.id, { loaded: 0, total: file.size, waiting: true });
        created.push([snap.id, file]);
      } catch (exc) {
        this.showError(exc, file.name);
      }
    }
    if (created.length) this.onCreated(created[0][0]);
    // One upload at a time, across batches too: the bytes of one file arrive sooner.
    for (const [id, file] of created) {
      this.queue = this.queue.then(() => this.send(id, file));
    }
  }

  async send(id, file) {
    const snap = this.tasks.snapshot(id);
    if (!snap || snap.stage !== STAGE.UPLOADING) {
      this.tasks.setUpload(id, null);
      return;
    }
    const upload = this.api.putFile(`/api/tasks/${id}/audio`, file, (loaded, total) => {
      this.tasks.setUpload(id, { loaded, total });
    });
    this.tasks.setUpload(id, { loaded: 0, total: file.size }, upload.abort);
    try {
      this.tasks.apply(await upload.promise);
    } catch (exc) {
      await this.refresh(id, exc);
    } finally {
      this.tasks.setUpload(id, null);
    }
  }

  // After a failed PUT the server usually failed the task itself; show its state, else ours.
  async refresh(id, exc) {
    try {
      this.tasks.apply(await this.api.get(`/api/tasks/${id}`));
    } catch {
      // The server is out of reach; the connection manager catches up later.
    }
    const snap = this.tasks.snapshot(id);
    if (snap && snap.stage === STAGE.UPLOADING && exc.code !== "CANCELLED") {
      this.tasks.setLocalError(id, exc);
    }
  }
}
