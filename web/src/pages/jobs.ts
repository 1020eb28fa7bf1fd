// Jobs: the tenant's jobs, live (GET /api/v1/jobs?watch=true pushes the page whenever a job
// changes), filtered by state/label/owner on the server and sorted here.
import { ApiError, api, roleAtLeast, stream } from "../api";
import { ago, duration, emptyState, errorBox, h, replace, stateBadge } from "../dom";
import { go, PageContext } from "../main";
import { Job, JobList, TERMINAL, jobGpus } from "../types";

const STATES = ["QUEUED", "STARTING", "RUNNING", "RESTARTING", "PREEMPTED", "SUCCEEDED", "FAILED",
  "CANCELLED"];
const MAX_PAGE = 500; // the API's largest page

type SortKey = "id" | "name" | "state" | "owner" | "gpus" | "age" | "duration";

function runSeconds(job: Job, now: number): number {
  if (!job.start_time) return -1;
  const end = job.end_time ? Date.parse(job.end_time) : now;
  return (end - Date.parse(job.start_time)) / 1000;
}

async function cancelJob(job: Job): Promise<void> {
  await api("POST", `/api/v1/jobs/${job.id}/cancel`);
}

export async function resubmitJob(job: Job): Promise<Job> {
  const body: Record<string, unknown> = { spec: job.spec };
  if (job.snapshot) body.snapshot = job.snapshot;
  return api<Job>("POST", "/api/v1/jobs", body);
}

export function jobsPage(ctx: PageContext): () => void {
  const { main, params } = ctx;
  const canWrite = roleAtLeast(ctx.me, "member");
  // The live page (newest first), and older pages fetched on demand (not live).
  const pageSize = Math.min(MAX_PAGE, Math.max(1, Number(params.get("page_size")) || MAX_PAGE));
  let jobs: Job[] = [];
  let liveCursor: string | null = null;
  let older: Job[] = [];
  let olderCursor: string | null = null;
  let sortKey: SortKey = (params.get("sort") as SortKey) ?? "id";
  let sortDesc = params.get("dir") !== "asc";
  const selected = new Set<number>();
  let close: () => void = () => {};
  let alive = true;

  const stateFilter = h("select", { id: "filter-state", "aria-label": "State" },
    h("option", { value: "" }, "Any state"),
    h("option", { value: "QUEUED,STARTING,RUNNING,RESTARTING,PREEMPTED" }, "Active"),
    STATES.map((s) => h("option", { value: s }, s)));
  stateFilter.value = params.get("state") ?? "";
  const labelFilter = h("input", { id: "filter-label", placeholder: "label key=value",
    value: params.get("label") ?? "" });
  const ownerFilter = h("input", { id: "filter-owner", placeholder: "owner",
    value: params.get("owner") ?? "" });
  const status = h("div", { class: "slot" });
  const tableSlot = h("div", { class: "table-wrap" });
  const compareButton = h("button", { id: "compare-selected", disabled: true,
    onclick: () => go(`#/compare?ids=${[...selected].join(",")}`) }, "Compare selected");

  function filterQuery(): string {
    const q = new URLSearchParams();
    if (stateFilter.value) q.set("state", stateFilter.value);
    const label = labelFilter.value.trim();
    if (label) q.set("label", label);
    const owner = ownerFilter.value.trim();
    if (owner) q.set("owner", owner);
    return q.toString();
  }

  function applyFilters(): void {
    const q = filterQuery();
    const keep = pageSize < MAX_PAGE ? `${q ? "&" : ""}page_size=${pageSize}` : "";
    history.replaceState(null, "", `#/jobs${q || keep ? "?" + q + keep : ""}`);
    connect();
  }
  for (const el of [stateFilter, labelFilter, ownerFilter]) {
    el.addEventListener("change", applyFilters);
  }

  function sorted(now: number): Job[] {
    const key = (j: Job): string | number => {
      switch (sortKey) {
        case "name": return j.name.toLowerCase();
        case "state": return j.state;
        case "owner": return j.owner;
        case "gpus": return jobGpus(j);
        case "age": return -Date.parse(j.submit_time);
        case "duration": return runSeconds(j, now);
        default: return j.id;
      }
    };
    const live = new Set(jobs.map((j) => j.id));
    return [...jobs, ...older.filter((j) => !live.has(j.id))].sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      const c = ka < kb ? -1 : ka > kb ? 1 : a.id - b.id;
      return sortDesc ? -c : c;
    });
  }

  function header(label: string, key: SortKey): HTMLElement {
    const arrow = sortKey === key ? (sortDesc ? " ▼" : " ▲") : "";
    return h("th", { class: "sortable", "aria-sort": sortKey === key ? (sortDesc ? "descending" : "ascending") : "none",
      onclick: () => {
        if (sortKey === key) sortDesc = !sortDesc;
        else { sortKey = key; sortDesc = key === "id" || key === "age"; }
        draw();
      } }, label + arrow);
  }

  function actions(job: Job): HTMLElement {
    const cell = h("td", { class: "actions" });
    if (!canWrite) return cell;
    if (!TERMINAL.has(job.state)) {
      cell.append(h("button", { class: "small danger", "data-action": "cancel", disabled: job.cancel_requested,
        onclick: async (e: Event) => {
          e.stopPropagation();
          if (!confirm(`Cancel job ${job.id} (${job.name})?`)) return;
          try { await cancelJob(job); } catch (err) { status.replaceChildren(errorBox(String((err as Error).message))); }
        } }, job.cancel_requested ? "Cancelling" : "Cancel"));
    } else {
      cell.append(h("button", { class: "small", "data-action": "resubmit",
        onclick: async (e: Event) => {
          e.stopPropagation();
          try {
            const created = await resubmitJob(job);
            go(`#/jobs/${created.id}`);
          } catch (err) { status.replaceChildren(errorBox(String((err as Error).message))); }
        } }, "Resubmit"));
    }
    return cell;
  }

  function draw(): void {
    const now = Date.now();
    compareButton.disabled = selected.size < 1;
    if (jobs.length === 0) {
      const filtered = filterQuery() !== "";
      replace(tableSlot, emptyState(filtered ? "No jobs match these filters." : "No jobs yet.",
        filtered ? "Clear the filters to see every job of this tenant."
          : h("span", null, "Submit one with ", h("code", null, "dlab run job.yaml"),
            " from the folder with your code (see examples/digits); it shows up here at once.")));
      return;
    }
    const rows = sorted(now).map((j) =>
      h("tr", { "data-job": j.id, class: "clickable", onclick: () => go(`#/jobs/${j.id}`) },
        h("td", { onclick: (e: Event) => e.stopPropagation() },
          h("input", { type: "checkbox", "aria-label": `Select job ${j.id}`, checked: selected.has(j.id),
            onchange: (e: Event) => {
              if ((e.target as HTMLInputElement).checked) selected.add(j.id); else selected.delete(j.id);
              compareButton.disabled = selected.size < 1;
            } })),
        h("td", { class: "num" }, h("a", { href: `#/jobs/${j.id}` }, String(j.id))),
        h("td", { class: "name", title: j.reason }, j.name || h("span", { class: "muted" }, "(unnamed)"),
          Object.entries(j.labels ?? {}).map(([k, v]) => h("span", { class: "label" }, `${k}=${v}`))),
        h("td", { class: "state-cell", title: j.reason }, stateBadge(j.state),
          j.state === "QUEUED" && j.reason ? h("div", { class: "why muted" }, j.reason) : null),
        h("td", null, j.owner),
        h("td", { class: "num" }, String(jobGpus(j))),
        h("td", { title: j.submit_time }, ago(j.submit_time, now)),
        h("td", null, j.start_time ? duration(runSeconds(j, now)) : ""),
        actions(j)));
    replace(tableSlot, h("table", { class: "jobs", id: "jobs-table" },
      h("thead", null, h("tr", null, h("th", null, ""), header("ID", "id"), header("Name", "name"),
        header("State", "state"), header("Owner", "owner"), header("GPUs", "gpus"),
        header("Age", "age"), header("Duration", "duration"), h("th", null, ""))),
      h("tbody", null, rows)),
      moreButton());
  }

  function moreButton(): HTMLElement | null {
    const cursor = older.length > 0 ? olderCursor : liveCursor;
    if (!cursor) return null;
    return h("p", { class: "more" }, h("button", { id: "older-jobs", onclick: async () => {
      try {
        const q = filterQuery();
        const page = await api<JobList>("GET",
          `/api/v1/jobs?limit=${pageSize}&cursor=${encodeURIComponent(cursor)}${q ? "&" + q : ""}`);
        older = [...older, ...page.jobs];
        olderCursor = page.next_cursor;
        draw();
      } catch (err) { status.replaceChildren(errorBox((err as Error).message)); }
    } }, `Show ${pageSize} older jobs`),
      h("span", { class: "muted" }, older.length > 0 ? ` ${older.length} older jobs shown; they do not update live.`
        : ` The newest ${jobs.length} update live.`));
  }

  function connect(): void {
    close();
    const q = filterQuery();
    older = [];
    olderCursor = null;
    close = stream(`/api/v1/jobs?watch=true&limit=${pageSize}${q ? "&" + q : ""}`, {
      onEvent: (event, data) => {
        if (event === "jobs") {
          const page = JSON.parse(data) as JobList;
          jobs = page.jobs;
          liveCursor = page.next_cursor;
          status.replaceChildren();
          draw();
        } else if (event === "error") {
          status.replaceChildren(errorBox(JSON.parse(data).message));
        }
      },
      onError: (err: ApiError) => status.replaceChildren(errorBox(err.message)),
      onClose: () => {
        if (!alive) return;
        status.replaceChildren(errorBox("Lost the connection to dlabd; reconnecting…"));
        setTimeout(() => alive && connect(), 2000);
      },
    });
  }

  replace(main,
    h("div", { class: "page-head" }, h("h1", null, "Jobs"), h("div", { class: "spacer" }), compareButton),
    h("div", { class: "filters" }, stateFilter, labelFilter, ownerFilter),
    status, tableSlot);
  tableSlot.append(h("p", { class: "muted" }, "Loading…"));
  connect();
  const ticker = setInterval(draw, 5000);
  return () => {
    alive = false;
    close();
    close = () => {};
    clearInterval(ticker);
  };
}
