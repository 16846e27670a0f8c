// Library: upload documents (XHR upload progress, then the ingest job's progress events) and
// list the documents of the chosen collection that the key may see.

import { api, collectionPath, downloadVersion, streamEvents, uploadForm } from "./api.js";
import { $, baseName, fillTable, h, setStatus, showError, splitList } from "./dom.js";

const DOC_LABELS = ["Document", "Version", "Who may see it", "Passages", ""];

export function setupLibrary(state, { onUploaded }) {
  $("#upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    upload(state, onUploaded);
  });
  $("#documents-refresh").addEventListener("click", () => loadDocuments(state));
}

function describeJob(job) {
  if (job.state === "queued") return "Waiting for the ingest worker…";
  if (job.state === "running") {
    return job.files ? `Ingesting: ${job.done} of ${job.files} files${job.current ? ` (${job.current})` : ""}…` : "Reading the files…";
  }
  if (job.state === "failed") return `The ingest failed: ${job.error || "no reason given"}`;
  const report = job.report || {};
  const parts = [`Done: ${report.ingested ?? 0} ingested`];
  if (report.unchanged) parts.push(`${report.unchanged} unchanged`);
  if (report.failed && report.failed.length) parts.push(`${report.failed.length} failed`);
  if (report.skipped && report.skipped.length) parts.push(`${report.skipped.length} skipped`);
  if (report.warnings && report.warnings.length) parts.push(`${report.warnings.length} warning${report.warnings.length === 1 ? "" : "s"}`);
  const chunks = report.chunks ?? 0;
  return `${parts.join(", ")}; ${chunks} passage${chunks === 1 ? "" : "s"} indexed.`;
}

async function upload(state, onUploaded) {
  const form = $("#upload-form");
  const files = $("#upload-files").files;
  const collection = $("#upload-collection").value.trim();
  const allow = $("#upload-allow").value.trim();
  const tenant = $("#upload-tenant").value.trim();
  const error = $("#upload-error");
  showError(error, "");
  if (!files.length) return invalid(error, "#upload-files", "Choose at least one file to upload.");
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(collection)) {
    return invalid(error, "#upload-collection", "A collection name starts with a letter and has only letters, digits and _.");
  }
  if (!allow) return invalid(error, "#upload-allow", "Say who may see the documents: groups, user:NAME, or * for everyone in the tenant.");

  const body = new FormData();
  for (const file of files) body.append("files", file, file.name);
  body.append("allow", splitList(allow).join(","));
  if (tenant) body.append("tenant", tenant);

  const box = $("#upload-progress-box");
  const bar = $("#upload-progress");
  const label = $("#upload-progress-label");
  const text = $("#upload-progress-text");
  const problems = $("#upload-problems");
  const button = $("#upload-button");
  box.hidden = false;
  box.dataset.state = "uploading";
  problems.replaceChildren();
  bar.max = 100;
  bar.value = 0;
  label.textContent = "Uploading";
  setStatus(text, `Uploading ${files.length} file${files.length === 1 ? "" : "s"}…`);
  button.disabled = true;
  try {
    let job = await uploadForm(`${collectionPath(collection)}/documents`, body, (loaded, total) => {
      bar.value = Math.round((loaded / total) * 100);
    });
    bar.value = 100;
    box.dataset.state = "ingesting";
    label.textContent = "Ingesting";
    setStatus(text, describeJob(job));
    job = await follow(job, (update) => {
      if (update.files) {
        bar.max = update.files;
        bar.value = update.done;
      }
      setStatus(text, describeJob(update));
    });
    box.dataset.state = job.state;
    label.textContent = job.state === "done" ? "Ingested" : "Ingest failed";
    if (job.files) bar.value = bar.max = job.files;
    setStatus(text, describeJob(job));
    const report = job.report || {};
    problems.replaceChildren(
      ...[...(report.failed || []), ...(report.skipped || [])].map((item) =>
        h("li", {}, h("strong", {}, baseName(item.path)), `: ${item.error}`),
      ),
      ...(report.warnings || []).map((item) => h("li", {}, h("strong", {}, baseName(item.path)), `: ${item.message}`)),
    );
    if (job.state === "failed") showError(error, job.error || "The ingest failed.");
    form.querySelector("#upload-files").value = "";
    await onUploaded(collection);
  } catch (failure) {
    box.dataset.state = "failed";
    label.textContent = "Upload failed";
    setStatus(text, "");
    showError(error, failure.message);
  } finally {
    button.disabled = false;
  }
}

function invalid(error, selector, message) {
  showError(error, message);
  $(selector).setAttribute("aria-invalid", "true");
  $(selector).addEventListener("input", () => $(selector).removeAttribute("aria-invalid"), { once: true });
  $(selector).focus();
}

/** The job's updates from its event stream until it finishes; falls back to polling GET. */
async function follow(job, onUpdate) {
  let last = job;
  try {
    await streamEvents(`/v1/jobs/${encodeURIComponent(job.job_id)}/events`, {
      onEvent(name, data) {
        if (name === "progress") {
          last = data;
          onUpdate(data);
        }
      },
    });
  } catch (error) {
    if (error.status === 401) throw error;
  }
  while (last.state !== "done" && last.state !== "failed") {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    last = await api(`/v1/jobs/${encodeURIComponent(job.job_id)}`);
    onUpdate(last);
  }
  return last;
}

export async function loadDocuments(state) {
  const collection = state.collection;
  const table = $("#documents");
  const status = $("#documents-status");
  $("#documents-collection").textContent = collection || "—";
  showError($("#documents-error"), "");
  if (!collection) {
    table.hidden = true;
    setStatus(status, "No collections yet. Upload documents to create one.");
    return;
  }
  setStatus(status, "Loading documents…");
  try {
    const { documents } = await api(`${collectionPath(collection)}/documents`);
    const rows = documents.map((doc) => [
      baseName(doc.source),
      String(doc.version),
      doc.allowed.length ? doc.allowed.join(", ") : "nobody",
      String(doc.chunks),
      h(
        "button",
        {
          type: "button",
          class: "quiet",
          "aria-label": `Download ${baseName(doc.source)}, version ${doc.version}`,
          onclick: (event) => downloadRow(event.currentTarget, collection, doc),
        },
        "Download",
      ),
    ]);
    fillTable(table, DOC_LABELS, rows);
    setStatus(status, rows.length ? `${rows.length} document${rows.length === 1 ? "" : "s"} you may see.` : `No documents you may see in “${collection}” yet.`);
  } catch (error) {
    table.hidden = true;
    setStatus(status, "");
    showError($("#documents-error"), error.message);
  }
}

async function downloadRow(button, collection, doc) {
  button.disabled = true;
  try {
    await downloadVersion(collection, doc.doc_id, doc.version, baseName(doc.source));
  } catch (error) {
    showError($("#documents-error"), error.message);
  } finally {
    button.disabled = false;
  }
}
