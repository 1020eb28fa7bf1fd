// Admin: tenants, the members of the current tenant, its quota (use against limit), access keys
// (a new key's secret is shown once), users (superadmins) and the audit trail.
import { api } from "../api";
import { card, emptyState, errorBox, h, localTime, replace } from "../dom";
import { PageContext } from "../main";

interface Tenant { name: string; create_time: string; role: string | null }
interface Member { user: string; role: string }
interface Key { id: string; name: string; user: string; create_time: string; revoke_time: string | null; active: boolean }
interface User { name: string; superadmin: boolean; create_time: string }
interface AuditRecord { id: number; time: string; user: string; key_id: string | null; tenant: string | null; action: string; target: string; status: number; message: string; remote: string }
interface Quota {
  tenant: string;
  limits: { gpus: number | null; cpus: string | null; memory: string | null; running_jobs: number | null; queued_jobs: number | null; gpus_by_type: Record<string, number> };
  used: { gpus: number; cpus: string; memory: string; running_jobs: number; queued_jobs: number; gpus_by_type: Record<string, number> };
}

const ROLES = ["viewer", "member", "admin"];

export function adminPage(ctx: PageContext): () => void {
  const { main, me } = ctx;
  let alive = true;
  const tenant = me.tenant ?? "";
  const status = h("div", { class: "slot" });
  const sections = {
    tenants: card("tenants"),
    members: card("members"),
    quota: card("quota"),
    keys: card("keys"),
    users: card("users"),
    audit: card("audit"),
  };
  replace(main, h("div", { class: "page-head" }, h("h1", null, "Admin"), h("span", { class: "muted" }, `tenant ${tenant}`)), status,
    h("div", { class: "admin-grid" }, sections.quota, sections.members, sections.keys, sections.tenants, me.superadmin ? sections.users : null),
    sections.audit);

  const fail = (e: unknown) => { if (alive) status.replaceChildren(errorBox((e as Error).message)); };
  const ok = () => status.replaceChildren();

  async function tenants(): Promise<void> {
    const r = await api<{ tenants: Tenant[] }>("GET", "/api/v1/tenants");
    const name = h("input", { placeholder: "new tenant name", "aria-label": "New tenant name" });
    replace(sections.tenants, h("h2", null, "Tenants"),
      h("table", null, h("tbody", null, r.tenants.map((t) => h("tr", null, h("td", null, t.name), h("td", { class: "muted" }, t.role ?? "—"), h("td", { class: "muted" }, localTime(t.create_time)))))),
      me.superadmin ? h("form", { class: "inline-form", onsubmit: async (e: Event) => {
        e.preventDefault();
        try { await api("POST", "/api/v1/tenants", { name: name.value.trim() }); ok(); await ctx.refreshMe(); } catch (err) { fail(err); }
      } }, name, h("button", { type: "submit" }, "Create tenant")) : null);
  }

  async function members(): Promise<void> {
    const r = await api<{ members: Member[] }>("GET", `/api/v1/tenants/${encodeURIComponent(tenant)}/members`);
    const user = h("input", { placeholder: "user name", "aria-label": "User to add" });
    const role = h("select", { "aria-label": "Role" }, ROLES.map((x) => h("option", { value: x, selected: x === "member" }, x)));
    const setRole = async (u: string, rl: string) => {
      try { await api("PUT", `/api/v1/tenants/${encodeURIComponent(tenant)}/members/${encodeURIComponent(u)}`, { role: rl }); ok(); await members(); } catch (err) { fail(err); }
    };
    replace(sections.members, h("h2", null, `Members of ${tenant}`),
      h("table", null, h("tbody", null, r.members.map((m) => h("tr", null, h("td", null, m.user),
        h("td", null, h("select", { "aria-label": `Role of ${m.user}`, onchange: (e: Event) => setRole(m.user, (e.target as HTMLSelectElement).value) },
          ROLES.map((x) => h("option", { value: x, selected: x === m.role }, x)))),
        h("td", null, h("button", { class: "small danger", onclick: async () => {
          if (!confirm(`Remove ${m.user} from ${tenant}?`)) return;
          try { await api("DELETE", `/api/v1/tenants/${encodeURIComponent(tenant)}/members/${encodeURIComponent(m.user)}`); ok(); await members(); } catch (err) { fail(err); }
        } }, "Remove")))))),
      h("form", { class: "inline-form", onsubmit: async (e: Event) => { e.preventDefault(); await setRole(user.value.trim(), role.value); } },
        user, role, h("button", { type: "submit" }, "Add")));
  }

  function bar(label: string, used: number, limit: number | null, text: string): HTMLElement {
    const frac = limit ? Math.min(1, used / limit) : 0;
    return h("div", { class: "quota-row" }, h("span", { class: "quota-label" }, label),
      h("div", { class: `bar ${frac >= 1 ? "full" : frac > 0.8 ? "high" : ""}` }, h("div", { class: "fill", style: `width:${(frac * 100).toFixed(1)}%` })),
      h("span", { class: "quota-text" }, text));
  }

  async function quota(): Promise<void> {
    const q = await api<Quota>("GET", `/api/v1/tenants/${encodeURIComponent(tenant)}/quota`);
    const num = (s: string | null) => (s === null ? null : parseFloat(s));
    const lim = (v: unknown) => (v === null ? "no limit" : String(v));
    replace(sections.quota, h("h2", null, "Quota"),
      bar("GPUs", q.used.gpus, q.limits.gpus, `${q.used.gpus} of ${lim(q.limits.gpus)}`),
      bar("CPUs", num(q.used.cpus) ?? 0, num(q.limits.cpus), `${q.used.cpus} of ${lim(q.limits.cpus)}`),
      bar("Memory", 0, null, `${q.used.memory} of ${lim(q.limits.memory)}`),
      bar("Running jobs", q.used.running_jobs, q.limits.running_jobs, `${q.used.running_jobs} of ${lim(q.limits.running_jobs)}`),
      bar("Queued jobs", q.used.queued_jobs, q.limits.queued_jobs, `${q.used.queued_jobs} of ${lim(q.limits.queued_jobs)}`),
      Object.entries(q.limits.gpus_by_type).map(([t, l]) => bar(`GPUs ${t}`, q.used.gpus_by_type[t] ?? 0, l, `${q.used.gpus_by_type[t] ?? 0} of ${l}`)),
      me.superadmin ? quotaForm(q) : null);
  }

  // Superadmins set the whole quota; an empty field has no limit (PUT replaces every field).
  function quotaForm(q: Quota): HTMLElement {
    const field = (name: string, label: string, value: unknown, hint: string) =>
      h("label", { class: "quota-field" }, label,
        h("input", { name, value: value === null || value === undefined ? "" : String(value), placeholder: hint, "aria-label": `Quota ${label}` }));
    const form = h("form", { class: "quota-form", id: "quota-form", onsubmit: async (e: Event) => {
      e.preventDefault();
      const data = new FormData(form);
      const text = (k: string) => String(data.get(k) ?? "").trim();
      const int = (k: string) => (text(k) === "" ? null : Number(text(k)));
      for (const k of ["gpus", "running_jobs", "queued_jobs"]) {
        const v = int(k);
        if (v !== null && !(Number.isInteger(v) && v >= 0)) { fail(new Error(`${k}: a whole number of at least 0, or empty for no limit`)); return; }
      }
      try {
        await api("PUT", `/api/v1/tenants/${encodeURIComponent(tenant)}/quota`, {
          gpus: int("gpus"), cpus: text("cpus") || null, memory: text("memory") || null,
          running_jobs: int("running_jobs"), queued_jobs: int("queued_jobs"),
          gpus_by_type: q.limits.gpus_by_type,
        });
        ok();
        await quota();
      } catch (err) { fail(err); }
    } },
      h("div", { class: "quota-fields" },
        field("gpus", "GPUs", q.limits.gpus, "no limit"), field("cpus", "CPUs", q.limits.cpus, "e.g. 16"),
        field("memory", "Memory", q.limits.memory, "e.g. 64Gi"),
        field("running_jobs", "Running jobs", q.limits.running_jobs, "no limit"),
        field("queued_jobs", "Queued jobs", q.limits.queued_jobs, "no limit")),
      h("button", { type: "submit" }, "Set quota"));
    return form;
  }

  async function keys(secret?: { id: string; secret: string }): Promise<void> {
    const r = await api<{ keys: Key[] }>("GET", "/api/v1/keys");
    const name = h("input", { placeholder: "key name, e.g. laptop", "aria-label": "Key name" });
    replace(sections.keys, h("h2", null, "Your access keys"),
      secret ? h("div", { class: "secret", id: "new-key-secret" }, h("strong", null, "Copy the secret now: it is shown only once."),
        h("pre", { class: "code" }, `access key id:     ${secret.id}\nsecret access key: ${secret.secret}`)) : null,
      r.keys.length === 0 ? emptyState("No access keys.", "The CLI and the SDK sign requests with one. Create one here, or run dlab login.")
        : h("table", null, h("tbody", null, r.keys.map((k) => h("tr", { class: k.active ? "" : "revoked" }, h("td", null, h("code", null, k.id)), h("td", null, k.name),
          h("td", { class: "muted" }, localTime(k.create_time)),
          h("td", null, k.active ? h("button", { class: "small danger", onclick: async () => {
            if (!confirm(`Revoke ${k.id}? Anything signing with it stops working.`)) return;
            try { await api("DELETE", `/api/v1/keys/${k.id}`); ok(); await keys(); } catch (err) { fail(err); }
          } }, "Revoke") : h("span", { class: "muted" }, "revoked")))))),
      h("form", { class: "inline-form", onsubmit: async (e: Event) => {
        e.preventDefault();
        try { const k = await api<Key & { secret: string }>("POST", "/api/v1/keys", { name: name.value.trim() }); ok(); await keys({ id: k.id, secret: k.secret }); } catch (err) { fail(err); }
      } }, name, h("button", { type: "submit" }, "Create key")));
  }

  async function users(): Promise<void> {
    const r = await api<{ users: User[] }>("GET", "/api/v1/users");
    const name = h("input", { placeholder: "user name", "aria-label": "New user name" });
    const password = h("input", { type: "password", placeholder: "password (8+ characters)", "aria-label": "New user password", autocomplete: "new-password" });
    replace(sections.users, h("h2", null, "Users"),
      h("table", null, h("tbody", null, r.users.map((u) => h("tr", null, h("td", null, u.name), h("td", { class: "muted" }, u.superadmin ? "superadmin" : ""), h("td", { class: "muted" }, localTime(u.create_time)))))),
      h("form", { class: "inline-form", onsubmit: async (e: Event) => {
        e.preventDefault();
        try { await api("POST", "/api/v1/users", { name: name.value.trim(), password: password.value }); ok(); await users(); } catch (err) { fail(err); }
      } }, name, password, h("button", { type: "submit" }, "Create user")));
  }

  let auditCursor: string | null = null;
  const auditBody = h("tbody", null);
  async function audit(more = false): Promise<void> {
    const q = new URLSearchParams({ limit: "100" });
    if (!me.superadmin) q.set("tenant", tenant);
    if (more && auditCursor) q.set("cursor", auditCursor);
    const r = await api<{ records: AuditRecord[]; next_cursor: string | null }>("GET", `/api/v1/audit?${q}`);
    auditCursor = r.next_cursor;
    if (!more) auditBody.replaceChildren();
    for (const a of r.records) {
      auditBody.append(h("tr", { class: a.status >= 400 ? "refused" : "" }, h("td", null, localTime(a.time)), h("td", null, a.user),
        h("td", null, a.tenant ?? ""), h("td", null, a.action), h("td", null, h("code", null, a.target)),
        h("td", { class: "num" }, String(a.status)), h("td", { class: "reason" }, a.message), h("td", { class: "muted" }, a.remote)));
    }
    replace(sections.audit, h("h2", null, "Audit trail"),
      h("table", null, h("thead", null, h("tr", null, ["Time", "User", "Tenant", "Action", "Target", "Status", "Message", "From"].map((c) => h("th", null, c)))), auditBody),
      auditCursor ? h("button", { onclick: () => audit(true).catch(fail) }, "Load more") : null);
  }

  for (const f of [tenants, members, quota, () => keys(), audit, ...(me.superadmin ? [users] : [])]) {
    f().catch(fail);
  }
  return () => { alive = false; };
}
