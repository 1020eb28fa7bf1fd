// The REST API, as the console uses it: the session cookie from POST /api/v1/login, the
// X-CSRF-Token header on every write, and X-Dlab-Tenant for the tenant chosen in the header.

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Membership {
  name: string;
  role: "viewer" | "member" | "admin";
}

export interface Me {
  user: string;
  superadmin: boolean;
  tenant: string | null;
  role: Membership["role"] | null;
  tenants: Membership[];
}

const CSRF_KEY = "dlab.csrf";
const TENANT_KEY = "dlab.tenant";

let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(f: () => void): void {
  onUnauthenticated = f;
}

export function tenant(): string | null {
  return localStorage.getItem(TENANT_KEY);
}
export function setTenant(name: string | null): void {
  if (name) localStorage.setItem(TENANT_KEY, name);
  else localStorage.removeItem(TENANT_KEY);
}

function headers(write: boolean, extra?: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...(extra ?? {}) };
  const t = tenant();
  if (t) out["X-Dlab-Tenant"] = t;
  if (write) out["X-CSRF-Token"] = localStorage.getItem(CSRF_KEY) ?? "";
  return out;
}

async function failure(res: Response): Promise<ApiError> {
  let code = "UNKNOWN";
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body?.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message);
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const write = method !== "GET" && method !== "HEAD";
  const init: RequestInit = {
    method,
    credentials: "same-origin",
    headers: headers(write, body === undefined ? undefined : { "Content-Type": "application/json" }),
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "UNAVAILABLE", "cannot reach dlabd: is it running?");
  }
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401 && path !== "/api/v1/login") onUnauthenticated();
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get("content-type") ?? "";
  return (type.includes("json") ? await res.json() : await res.text()) as T;
}

export async function login(user: string, password: string): Promise<Me> {
  const r = await api<Me & { csrf_token: string }>("POST", "/api/v1/login", { user, password });
  localStorage.setItem(CSRF_KEY, r.csrf_token);
  const current = tenant();
  if (!current || !r.tenants.some((t) => t.name === current)) setTenant(r.tenants[0]?.name ?? null);
  return r;
}

export async function logout(): Promise<void> {
  try {
    await api("POST", "/api/v1/logout");
  } finally {
    localStorage.removeItem(CSRF_KEY);
  }
}

export function whoami(): Promise<Me> {
  return api<Me>("GET", "/api/v1/whoami");
}

export interface StreamHandlers {
  onEvent: (event: string, data: string) => void;
  onError?: (err: ApiError) => void;
  onClose?: () => void;
}

// Server-Sent Events over fetch (EventSource cannot send X-Dlab-Tenant). Returns a function
// that closes the stream.
export function stream(path: string, handlers: StreamHandlers): () => void {
  const abort = new AbortController();
  (async () => {
    let res: Response;
    try {
      res = await fetch(path, {
        credentials: "same-origin",
        headers: headers(false, { Accept: "text/event-stream" }),
        signal: abort.signal,
      });
    } catch {
      if (!abort.signal.aborted) {
        handlers.onError?.(new ApiError(0, "UNAVAILABLE", "cannot reach dlabd: is it running?"));
      }
      return;
    }
    if (!res.ok || !res.body) {
      const err = await failure(res);
      if (res.status === 401) onUnauthenticated();
      handlers.onError?.(err);
      return;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = "message";
    let data: string[] = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, "");
          buffer = buffer.slice(nl + 1);
          if (line === "") {
            if (data.length > 0) handlers.onEvent(event, data.join("\n"));
            event = "message";
            data = [];
          } else if (line.startsWith(":")) {
            // a comment (keepalive)
          } else if (line.startsWith("event:")) {
            event = line.slice(6).trim();
          } else if (line.startsWith("data:")) {
            data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
          }
        }
      }
    } catch {
      // aborted, or the connection dropped
    }
    if (!abort.signal.aborted) handlers.onClose?.();
  })();
  return () => abort.abort();
}

export function roleAtLeast(me: Me, needed: Membership["role"]): boolean {
  if (me.superadmin) return true;
  const order = ["viewer", "member", "admin"];
  return me.role !== null && order.indexOf(me.role) >= order.indexOf(needed);
}
