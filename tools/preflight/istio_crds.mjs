// Validate Istio custom resources against the upstream CRD schemas, as packaged in npm's
// @kubernetes-models/istio (generated from istio/istio manifests/charts/base/files/crd-all.gen.yaml).
//
// Input (stdin): {"unknown": "<sentinel>", "objects": [{"id": "...", "object": {apiVersion, kind, metadata, spec}}]}
// Output (stdout): {"istio": "<package version>", "findings": [{"id", "check", "path", "message"}]}
//
// Two checks per object:
// - "schema": the package's compiled validator (types, enums, required fields, oneOf), as the API server's
//   structural schema validation would answer;
// - "unknown-field": fields the CRD does not declare. The compiled validators accept them (the CRDs do not set
//   additionalProperties: false) and the API server prunes them silently, so a misspelled field is lost
//   without an error. The declared fields are read from the package's .d.ts files (generated from the same
//   schemas): object properties, maps (index signatures), arrays, unions (oneOf branches) merged.
// A value equal to the sentinel is unknown in a preview record: errors at or below it are dropped.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import crypto from "node:crypto";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const packageDir = path.dirname(require.resolve("@kubernetes-models/istio/package.json", { paths: [here] }));
const packageVersion = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")).version;

// Reading the declarations needs the TypeScript parser (~1 s to load); the fields it yields are cached per
// package version and version of this file, so later runs only load the compiled validators.
let ts = null;
const cacheFile = path.join(
  path.dirname(path.dirname(packageDir)),
  ".cache",
  "ratelimited-preflight",
  `istio-${packageVersion}-${crypto.createHash("sha256").update(fs.readFileSync(fileURLToPath(import.meta.url))).digest("hex").slice(0, 12)}.json`,
);
const cachedShapes = fs.existsSync(cacheFile) ? JSON.parse(fs.readFileSync(cacheFile, "utf8")) : {};
let cacheChanged = false;

const OPEN = { kind: "open" };
const SCALAR = { kind: "scalar" };

function shapeOf(node) {
  switch (node.kind) {
    case ts.SyntaxKind.ParenthesizedType:
      return shapeOf(node.type);
    case ts.SyntaxKind.TypeLiteral:
      return objectShape(node.members);
    case ts.SyntaxKind.ArrayType:
      return { kind: "array", items: shapeOf(node.elementType) };
    case ts.SyntaxKind.TypeReference: {
      const name = ts.isIdentifier(node.typeName) ? node.typeName.text : "";
      if (name === "Array" && node.typeArguments?.length === 1) {
        return { kind: "array", items: shapeOf(node.typeArguments[0]) };
      }
      // oneOf branches come as Exclude<{...}, {...}>: the branch's fields are those of its first argument
      if (name === "Exclude" && node.typeArguments?.length) return shapeOf(node.typeArguments[0]);
      return OPEN; // IObjectMeta and other named types: not judged here
    }
    case ts.SyntaxKind.UnionType:
    case ts.SyntaxKind.IntersectionType:
      return node.types.map(shapeOf).reduce(merge);
    case ts.SyntaxKind.AnyKeyword:
    case ts.SyntaxKind.UnknownKeyword:
    case ts.SyntaxKind.ObjectKeyword:
      return OPEN;
    default:
      return SCALAR; // string, number, boolean, literal types
  }
}

function objectShape(members) {
  const props = {};
  let index = null;
  for (const member of members) {
    if (ts.isPropertySignature(member)) {
      props[member.name.text] = member.type ? shapeOf(member.type) : OPEN;
    } else if (ts.isIndexSignatureDeclaration(member)) {
      index = shapeOf(member.type);
    }
  }
  return { kind: "object", props, index };
}

// A union of shapes: a field is declared if any branch declares it.
function merge(a, b) {
  if (a.kind === "open" || b.kind === "open") return OPEN;
  if (a.kind === "scalar") return b;
  if (b.kind === "scalar") return a;
  if (a.kind === "array" && b.kind === "array") return { kind: "array", items: merge(a.items, b.items) };
  if (a.kind === "object" && b.kind === "object") {
    const props = { ...a.props };
    for (const [name, shape] of Object.entries(b.props)) {
      props[name] = Object.hasOwn(props, name) ? merge(props[name], shape) : shape;
    }
    const index = a.index && b.index ? merge(a.index, b.index) : a.index || b.index;
    return { kind: "object", props, index };
  }
  return OPEN; // an object in one branch, an array in another: let the validator judge
}

const models = new Map();

async function model(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!models.has(key)) {
    models.set(key, loadModel(apiVersion, kind));
  }
  return models.get(key);
}

async function loadModel(apiVersion, kind) {
  if (!/^[a-z0-9.]+\/v[0-9a-z]+$/.test(apiVersion) || !/^[A-Za-z]+$/.test(kind)) return null;
  const base = path.join(packageDir, apiVersion, kind);
  if (!fs.existsSync(`${base}.js`) || !fs.existsSync(`${base}.d.ts`)) return null;
  const module = await import(pathToFileURL(`${base}.js`).href);
  const key = `${apiVersion}/${kind}`;
  if (!Object.hasOwn(cachedShapes, key)) {
    cachedShapes[key] = await declaredShape(`${base}.d.ts`, kind);
    cacheChanged = true;
  }
  return { Model: module[kind], shape: cachedShapes[key] };
}

async function declaredShape(file, kind) {
  ts ??= (await import("typescript")).default;
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest);
  for (const statement of source.statements) {
    if (ts.isInterfaceDeclaration(statement) && statement.name.text === `I${kind}`) {
      return objectShape(statement.members);
    }
  }
  throw new Error(`${file} declares no interface I${kind}`);
}

function saveCache() {
  if (!cacheChanged) return;
  fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(cachedShapes));
  fs.renameSync(tmp, cacheFile);
}

function unknownFields(value, shape, pointer, unknown, out) {
  if (value === unknown || value === null || shape.kind === "open" || shape.kind === "scalar") return;
  if (shape.kind === "array") {
    if (Array.isArray(value)) value.forEach((item, i) => unknownFields(item, shape.items, `${pointer}/${i}`, unknown, out));
    return;
  }
  if (typeof value !== "object" || Array.isArray(value)) return; // a type error: the validator reports it
  for (const [name, child] of Object.entries(value)) {
    const childShape = Object.hasOwn(shape.props, name) ? shape.props[name] : shape.index;
    const childPointer = `${pointer}/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`;
    if (childShape === undefined || childShape === null) {
      const known = Object.keys(shape.props).sort().join(", ");
      out.push({ path: childPointer, message: `unknown field "${name}" (the CRD declares: ${known})` });
    } else {
      unknownFields(child, childShape, childPointer, unknown, out);
    }
  }
}

function valueAt(object, pointer) {
  let value = object;
  for (const part of pointer.split("/").slice(1)) {
    if (value === null || typeof value !== "object") return undefined;
    value = value[part.replaceAll("~1", "/").replaceAll("~0", "~")];
  }
  return value;
}

function underUnknown(object, pointer, unknown) {
  const parts = pointer.split("/");
  for (let n = parts.length; n > 0; n--) {
    if (valueAt(object, parts.slice(0, n).join("/")) === unknown) return true;
  }
  return false;
}

async function check({ id, object }, unknown) {
  const findings = [];
  const found = await model(object.apiVersion, object.kind);
  if (found === null) {
    return [{ id, check: "schema", path: "", message: `no CRD schema for ${object.apiVersion} ${object.kind}` }];
  }
  try {
    new found.Model(object).validate();
  } catch (error) {
    if (!Array.isArray(error.errors)) throw error;
    for (const e of error.errors) {
      const pointer = e.instancePath;
      if (underUnknown(object, pointer, unknown)) continue;
      const detail = e.keyword === "enum" ? ` (${e.params.allowedValues.join(", ")})` : "";
      findings.push({ id, check: "schema", path: pointer, message: `${pointer || "/"} ${e.message}${detail}` });
    }
  }
  const unknownOut = [];
  unknownFields(object, found.shape, "", unknown, unknownOut);
  for (const u of unknownOut) findings.push({ id, check: "unknown-field", ...u });
  return findings;
}

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const findings = [];
for (const item of input.objects) findings.push(...(await check(item, input.unknown)));
saveCache();
process.stdout.write(JSON.stringify({ istio: packageVersion, findings }));
