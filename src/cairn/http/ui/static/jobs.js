// Jobs: the ingest jobs of the key's tenant, refreshed while any is still running.

import { api } from "./api.js";
import { $, fillTable, h, setStatus, showError, when } from "./dom.js";

const LABELS = ["Job", "Collection", "State", "Files", "Started", "Result"];
let timer = null;

export function setupJobs() {
  $("#jobs-refresh").addEventListener("click", () => loadJobs());
}

function result(job) {
  if (job.state === "failed") return job.error || "failed";
  if (!job.report) return job.current ? `working on ${job.current}` : job.kind === "source-sync" ? "source sync" : "—";
  const r = job.report;
  const failed = r.failed.length ? `, ${r.failed.length} failed` : "";
  const summary =
    job.kind === "source-sync"
      ? `source sync: ${r.files} listed, ${r.unchanged} unchanged, ${r.ingested} ingested, ${r.removed} removed${failed}`
      : `${r.ingested} ingested, ${r.unchanged} unchanged${failed}; ${r.chunks} passage${r.chunks === 1 ? "" : "s"}`;
  const warnings = r.warnings || [];
  if (!warnings.length) return summary;
  // Text nodes only: paths and messages quote the damaged document's own text.
  return h(
    "div",
    {},
    summary,
    h("ul", { class: "job-warnings" }, ...warnings.map((w) => h("li", {}, h("strong", {}, w.path), `: ${w.message}`))),
  );
}

export async function loadJobs() {
  clearTimeout(timer);
  const table = $("#jobs");
  const status = $("#jobs-status");
  showError($("#jobs-error"), "");
  setStatus(status, "Loading jobs…");
  try {
    const { jobs } = await api("/v1/jobs");
    jobs.sort((a, b) => b.created_at - a.created_at);
    fillTable(
      table,
      LABELS,
      jobs.map((job) => [
        h("code", {}, job.job_id),
        job.collection,
        h("span", { class: `badge badge-${job.state}` }, job.state),
        `${job.done} of ${job.files}`,
        when(job.created_at),
        result(job),
      ]),
    );
    setStatus(status, jobs.length ? "" : "No ingest jobs yet. Uploads in the Library start one.");
    if (jobs.some((job) => job.state === "queued" || job.state === "running") && !$("#view-jobs").hidden) {
      timer = setTimeout(loadJobs, 1500);
    }
  } catch (error) {
    table.hidden = true;
    setStatus(status, "");
    showError($("#jobs-error"), error.message);
  }
}
