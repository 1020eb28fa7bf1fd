// Validates Kubernetes manifests against the official OpenAPI schemas, using the model classes
// of the npm package kubernetes-models (pinned in package.json; install with
// `npm ci --prefix tests/kube_schema`, which scripts/install-deps.sh does).
//
//   node tests/kube_schema/validate.mjs FILE...
//
// Each FILE holds one JSON object, a JSON array of objects, or a v1 List ({"kind": "List",
// "items": [...]}). Every object is validated with the class for its apiVersion/kind (any
// built-in kind: batch/v1 Job, v1 Service, v1 Pod, v1 ConfigMap, v1 Secret, ...; unknown kinds
// are invalid). Prints one line per object, `ok KIND NAME` or `invalid KIND NAME: MESSAGE`, and
// exits 0 only when every object is valid (1 otherwise, 2 on a usage error).
//
// What the pinned kubernetes-models 4.5.1 checks (verified by hand, and by
// tests/e2e/test_kube_schema.py):
// - Its schemas are Kubernetes v1.33.0 (the release that "Update schema version to v1.33.0" was
//   4.5.0; 4.5.1 only bumped @kubernetes-models/apimachinery; the README's 1.27.1 badge is stale).
//   It is the newest version for Node 20: 5.x (Kubernetes v1.36) is ESM-only and needs Node >= 22.
// - Unknown fields are NOT rejected: the schemas carry no additionalProperties: false, so a
//   misspelled field (`comand`, `spec.bogus`) passes. Checked are types (integer vs string),
//   enums (completionMode, restartPolicy, podFailurePolicy actions, ...), required fields
//   (containers[].name, spec.template, ...) and formats (resource quantities, int-or-string).
//   Object names are not checked against DNS label rules.
// - batch/v1 JobSpec knows successPolicy (rules[].succeededIndexes/succeededCount),
//   podFailurePolicy, backoffLimitPerIndex, maxFailedIndexes, podReplacementPolicy and managedBy.
import { readFileSync } from "node:fs";
import "kubernetes-models/v1/Pod"; // fails fast, naming the package, when npm ci has not run

const KIND_RE = /^[A-Z][A-Za-z0-9]*$/;
const API_VERSION_RE = /^(?:[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*\/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$/;

// The model class for apiVersion/kind, or null when kubernetes-models has none.
const classes = new Map();
async function modelClass(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!classes.has(key)) {
    let cls = null;
    if (API_VERSION_RE.test(apiVersion) && KIND_RE.test(kind)) {
      try {
        const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
        const c = mod[kind];
        if (c && c.apiVersion === apiVersion && c.kind === kind) cls = c;
      } catch (e) {
        const notFound = ["ERR_MODULE_NOT_FOUND", "ERR_PACKAGE_PATH_NOT_EXPORTED"];
        if (!notFound.includes(e.code)) throw e;
      }
    }
    classes.set(key, cls);
  }
  return classes.get(key);
}

function objectsIn(doc) {
  if (Array.isArray(doc)) return doc.flatMap(objectsIn);
  if (doc && doc.apiVersion === "v1" && doc.kind === "List" && Array.isArray(doc.items)) {
    return doc.items.flatMap(objectsIn);
  }
  return [doc];
}

// Returns null when obj is valid, else the reason.
async function check(obj) {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) return "not a JSON object";
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    return "missing apiVersion or kind";
  }
  const cls = await modelClass(apiVersion, kind);
  if (!cls) return `unknown kind ${kind} in ${apiVersion}`;
  try {
    new cls(obj).validate();
    return null;
  } catch (e) {
    return e.message;
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE...");
  process.exit(2);
}
let allValid = true;
for (const file of files) {
  let objects;
  try {
    objects = objectsIn(JSON.parse(readFileSync(file, "utf8")));
  } catch (e) {
    console.log(`invalid ${file}: ${e.message}`);
    allValid = false;
    continue;
  }
  if (objects.length === 0) {
    console.log(`invalid ${file}: no objects`);
    allValid = false;
  }
  for (const obj of objects) {
    const kind = (obj && typeof obj.kind === "string" && obj.kind) || "?";
    const name = obj?.metadata?.name ?? obj?.metadata?.generateName ?? "?";
    const error = await check(obj);
    if (error === null) {
      console.log(`ok ${kind} ${name}`);
    } else {
      console.log(`invalid ${kind} ${name}: ${error}`);
      allValid = false;
    }
  }
}
process.exit(allValid ? 0 : 1);
