/**
 * OpenAPI v3 schemas for the kinds the lab serves, so `kubectl explain pod` (and `pod.spec`,
 * `lease`, `namespace` …) works: every field with its type and description, nested kinds by
 * `$ref`, and the top-level kinds marked with `x-kubernetes-group-version-kind`, which is how
 * kubectl explain finds a kind in the document.
 *
 * The field lists come from @kubernetes/client-node's generated models (each model's
 * `attributeTypeMap`: name, JSON name, type, format; generated from upstream's OpenAPI) and the
 * descriptions from the doc comments of the same models' `.d.ts` files: the lab does not keep a
 * copy of the Kubernetes API spec. Models are imported one file at a time, not through
 * client-node's index (which costs about a second), and the schemas are built once.
 *
 * Mirrors the shapes of k8s.io/kube-openapi `pkg/builder3` (components.schemas, `allOf: [$ref]`
 * beside a description, int-or-string as `x-kubernetes-int-or-string`). Differences: schema names
 * are client-node's model names (`V1Pod`, not `io.k8s.api.core.v1.Pod`); no patch strategies
 * (so `kubectl apply` keeps computing its strategic merge patch from its compiled-in types, see
 * openapi.ts).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

interface Attribute {
  name: string;
  baseName: string;
  type: string;
  format: string;
}

export type Schema = Record<string, unknown>;

/** The model of each served kind, by group/version/kind. */
const ROOT_MODELS: Record<string, string> = {
  '/v1/Pod': 'V1Pod',
  '/v1/Node': 'V1Node',
  '/v1/Namespace': 'V1Namespace',
  '/v1/Binding': 'V1Binding',
  'coordination.k8s.io/v1/Lease': 'V1Lease',
  'authorization.k8s.io/v1/SelfSubjectAccessReview': 'V1SelfSubjectAccessReview',
  'authorization.k8s.io/v1/SubjectAccessReview': 'V1SubjectAccessReview',
  'authentication.k8s.io/v1/SelfSubjectReview': 'V1SelfSubjectReview',
};

/** The schema name of a served kind, or undefined when it has none. */
export function schemaNameOf(group: string, version: string, kind: string): string | undefined {
  return ROOT_MODELS[`${group}/${version}/${kind}`];
}

function modelsDir(): string {
  const main = createRequire(import.meta.url).resolve('@kubernetes/client-node');
  return path.join(path.dirname(main), 'gen', 'models');
}

/** `/** text *\/` before `'field'` (and before the class) in a model's .d.ts. */
function descriptions(file: string): { model?: string; fields: Map<string, string> } {
  const fields = new Map<string, string>();
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { fields };
  }
  const doc = /\/\*\*\s*\n((?:\s*\*.*\n)*?)\s*\*\/\s*\n\s*(?:'([^']+)'|export declare class)/g;
  let model: string | undefined;
  for (const m of text.matchAll(doc)) {
    const body = m[1]!
      .split('\n')
      .map((l) => l.replace(/^\s*\*\s?/, '').trim())
      .filter(Boolean)
      .join(' ');
    if (m[2]) fields.set(m[2], body);
    else model = body;
  }
  return { model, fields };
}

const MODEL = /^(V\d\w*|Core\w+)$/;

class SchemaBuilder {
  readonly schemas: Record<string, Schema> = {};
  private readonly dir = modelsDir();

  async add(model: string): Promise<void> {
    if (this.schemas[model] || !MODEL.test(model)) return;
    const file = path.join(this.dir, `${model}.js`);
    if (!fs.existsSync(file)) return;
    this.schemas[model] = { type: 'object' }; // placeholder: a model may refer to itself
    const mod = (await import(pathToFileURL(file).href)) as Record<
      string,
      { attributeTypeMap?: Attribute[] } | undefined
    >;
    const attributes = mod[model]?.attributeTypeMap ?? [];
    const docs = descriptions(path.join(this.dir, `${model}.d.ts`));
    const properties: Record<string, Schema> = {};
    const refs: string[] = [];
    for (const a of attributes) {
      const s = this.typeSchema(a.type, a.format, refs);
      const description = docs.fields.get(a.name);
      properties[a.baseName] = description
        ? s.$ref
          ? { allOf: [s], description }
          : { ...s, description }
        : s;
    }
    this.schemas[model] = {
      ...(docs.model ? { description: docs.model } : {}),
      type: 'object',
      properties,
    };
    for (const r of refs) await this.add(r);
  }

  private typeSchema(type: string, format: string, refs: string[]): Schema {
    const array = /^Array<(.+)>$/.exec(type);
    if (array) return { type: 'array', items: this.typeSchema(array[1]!, format, refs) };
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (map) return { type: 'object', additionalProperties: this.typeSchema(map[1]!, format, refs) };
    switch (type) {
      case 'string':
        return { type: 'string', ...(format ? { format } : {}) };
      case 'number':
        return format === 'double'
          ? { type: 'number', format }
          : { type: 'integer', format: format || 'int64' };
      case 'boolean':
        return { type: 'boolean' };
      case 'Date':
        return { type: 'string', format: 'date-time' };
      case 'IntOrString':
        return { 'x-kubernetes-int-or-string': true };
      case 'any':
      case 'object':
        return { type: 'object' };
    }
    if (!MODEL.test(type)) return { type: 'object' };
    refs.push(type);
    return { $ref: `#/components/schemas/${type}` };
  }
}

let built: Promise<Record<string, Schema>> | undefined;

/** Every served kind's schema and the schemas they refer to (built on first use). */
export function allSchemas(): Promise<Record<string, Schema>> {
  built ??= (async () => {
    const b = new SchemaBuilder();
    for (const model of Object.values(ROOT_MODELS)) await b.add(model);
    for (const [gvk, model] of Object.entries(ROOT_MODELS)) {
      const [group, version, kind] = gvk.split('/');
      const s = b.schemas[model];
      if (s) s['x-kubernetes-group-version-kind'] = [{ group, kind, version }];
    }
    return b.schemas;
  })();
  return built;
}
