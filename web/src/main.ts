// The console's shell: the header (navigation, tenant switch, user, log out) and a hash router.
// Each page is a function that fills the main element and returns a cleanup (closing streams).
import "./style.css";
import { ApiError, Me, logout, setTenant, setUnauthenticatedHandler, tenant, whoami } from "./api";
import { errorBox, h, replace } from "./dom";
import { adminPage } from "./pages/admin";
import { clusterPage } from "./pages/cluster";
import { comparePage } from "./pages/compare";
import { jobPage } from "./pages/job";
import { jobsPage } from "./pages/jobs";
import { loginPage } from "./pages/login";

export interface PageContext {
  me: Me;
  main: HTMLElement;
  params: URLSearchParams;
  refreshMe: () => Promise<void>;
}
export type Cleanup = (() => void) | void;

const app = document.getElementById("app")!;
let cleanup: Cleanup;
let me: Me | null = null;

function route(): { path: string[]; params: URLSearchParams } {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?", 2);
  return { path: path.split("/").filter(Boolean), params: new URLSearchParams(query ?? "") };
}

export function go(hash: string): void {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function nav(active: string): HTMLElement {
  const link = (hash: string, label: string, key: string) =>
    h("a", { href: hash, class: active === key ? "active" : "" }, label);
  const links = [link("#/jobs", "Jobs", "jobs"), link("#/compare", "Compare", "compare"),
    link("#/cluster", "Cluster", "cluster")];
  if (me && (me.superadmin || me.role === "admin")) links.push(link("#/admin", "Admin", "admin"));
  const tenantSelect = h(
    "select",
    {
      "aria-label": "Tenant",
      id: "tenant-select",
      onchange: (e: Event) => {
        setTenant((e.target as HTMLSelectElement).value);
        void start();
      },
    },
    (me?.tenants ?? []).map((t) =>
      h("option", { value: t.name, selected: t.name === me?.tenant }, `${t.name} (${t.role})`),
    ),
  );
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/jobs" }, h("img", { src: "/favicon.svg", alt: "" }), "dlab"),
    h("nav", null, links),
    h("div", { class: "spacer" }),
    me && me.tenants.length > 0 ? tenantSelect : null,
    h("span", { class: "who", title: me?.superadmin ? "superadmin" : me?.role ?? "" }, me?.user ?? ""),
    h(
      "button",
      {
        class: "ghost",
        id: "logout",
        onclick: async () => {
          await logout().catch(() => {});
          me = null;
          go("#/login");
        },
      },
      "Log out",
    ),
  );
}

function render(): void {
  if (typeof cleanup === "function") cleanup();
  cleanup = undefined;
  const { path, params } = route();
  if (!me || path[0] === "login") {
    replace(app, loginPage(async () => {
      await start();
    }));
    return;
  }
  const main = h("main", null);
  const page = path[0] ?? "jobs";
  replace(app, nav(page === "jobs" && path[1] ? "jobs" : page), main);
  const ctx: PageContext = { me, main, params, refreshMe: start };
  try {
    if (page === "jobs" && path[1]) cleanup = jobPage(ctx, Number(path[1]));
    else if (page === "jobs") cleanup = jobsPage(ctx);
    else if (page === "compare") cleanup = comparePage(ctx);
    else if (page === "cluster") cleanup = clusterPage(ctx);
    else if (page === "admin") cleanup = adminPage(ctx);
    else replace(main, errorBox(`No page ${location.hash}.`), h("a", { href: "#/jobs" }, "Go to jobs"));
  } catch (e) {
    replace(main, errorBox(String(e)));
  }
}

// Who is logged in (the session cookie), then the page of the address.
async function start(): Promise<void> {
  try {
    me = await whoami();
    if (me.tenant && me.tenant !== tenant()) setTenant(me.tenant);
  } catch (e) {
    me = null;
    if (e instanceof ApiError && e.status === 404 && tenant()) {
      setTenant(null); // a tenant we no longer belong to: fall back to the first
      return start();
    }
  }
  if (me && route().path[0] === "login") location.hash = "#/jobs";
  render();
}

setUnauthenticatedHandler(() => {
  if (me) {
    me = null;
    render();
  }
});
window.addEventListener("hashchange", render);
void start();
