// The shapes of the API's answers that the console reads (api/openapi.yaml has them all).
export interface TaskEnd {
  rank: number;
  role: string;
  exit_code: number | null;
  end_reason: string;
}
export interface Attempt {
  attempt: number;
  state: string;
  reason: string;
  allocation: { cpus: string; memory: string; gpus: number[] };
  start_time: string | null;
  end_time: string | null;
  exit_code: number | null;
  failure: string | null;
  resumed_from: { id: number; step: number; path: string } | null;
  tasks: TaskEnd[];
}
export interface Job {
  id: number;
  name: string;
  tenant: string;
  owner: string;
  state: string;
  reason: string;
  spec: Record<string, unknown> & { resources?: { gpus?: number }; tasks?: number };
  snapshot: string;
  priority: number;
  labels: Record<string, string>;
  submit_time: string;
  start_time: string | null;
  end_time: string | null;
  exit_code: number | null;
  cancel_requested: boolean;
  attempts: number;
  tasks: number;
  attempt_list: Attempt[];
}
export interface JobList {
  jobs: Job[];
  next_cursor: string | null;
}
export interface JobEvent {
  id: number;
  time: string;
  from: string | null;
  to: string;
  reason: string;
}
export interface Series {
  name: string;
  count: number;
  points: [number, number, number][];
  latest: { step: number; time: number; value: number };
}
export interface Checkpoint {
  id: number;
  attempt: number;
  step: number;
  path: string;
  metrics: Record<string, number>;
  time: string;
}
export interface QueuedJob {
  position: number;
  id: number;
  name: string;
  owner: string;
  priority: number;
  gpus: number;
  submit_time: string;
  reason: string;
  estimated_start: string | null;
}
export interface Gpu {
  index: number;
  uuid: string | null;
  model: string | null;
  utilization_pct: number | null;
  memory_used_bytes: number | null;
  memory_total_bytes: number | null;
  temperature_c: number | null;
  power_w: number | null;
  ecc_errors: number | null;
  job?: number | null;
}
export interface Sample {
  time: string;
  node: string;
  host: {
    cpu_pct: number | null;
    memory_used_bytes: number | null;
    memory_total_bytes: number | null;
    disk_used_bytes: number | null;
    disk_total_bytes: number | null;
  };
  gpus: Gpu[];
  gpu_note?: string;
}
export interface Alert {
  rule: string;
  kind: string;
  key: string;
  state: string;
  message: string;
  since: string;
  time: string;
}

export interface NodeList {
  backend: string;
  gpu_holders_known: boolean;
  nodes: {
    name: string;
    state: string;
    cpus: string;
    memory: string;
    cpus_used: string;
    memory_used: string;
    gpus: { index: number; type: string; model: string; job: number | null }[];
  }[];
}

export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

export function jobGpus(job: Job): number {
  const perTask = Number(job.spec.resources?.gpus ?? 0);
  return perTask * (job.tasks || 1);
}
