/**
 * Field and label selectors for list and watch: `spec.nodeName=node-1,status.phase!=Failed`,
 * `app=web,tier!=db,env,!debug,zone in (a,b),zone notin (c)`.
 *
 * Mirrors apimachinery `pkg/fields/selector.go` and `pkg/labels/selector.go` (the parsing rules and
 * the error messages), without value escaping.
 */
import { StatusError } from '../../shared/status.js';

export type Operator = '=' | '!=' | 'exists' | '!exists' | 'in' | 'notin';

export interface Requirement {
  key: string;
  op: Operator;
  values: string[];
}

export interface Selector {
  requirements: Requirement[];
  text: string;
}

/** Field values of an object, by selector key (`metadata.name`, `spec.nodeName` …); absent fields are ''. */
export type FieldSet = Record<string, string>;

export function parseFieldSelector(text: string, supported: readonly string[]): Selector | undefined {
  if (!text.trim()) return undefined;
  const requirements = splitTopLevel(text).map((term): Requirement => {
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw StatusError.of(400, `invalid selector: '${text}'; can't understand '${term}'`);
    const key = m[1]!.trim();
    if (!supported.includes(key)) throw StatusError.of(400, `field label not supported: ${key}`);
    return { key, op: m[2] === '!=' ? '!=' : '=', values: [m[3]!.trim()] };
  });
  return { requirements, text };
}

export function parseLabelSelector(text: string): Selector | undefined {
  if (!text.trim()) return undefined;
  const requirements = splitTopLevel(text).map((term): Requirement => {
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const values = m[3]!
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean);
      return { key: m[1]!, op: m[2] as 'in' | 'notin', values };
    }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(term);
    if (m) return { key: m[1]!, op: m[2] === '!=' ? '!=' : '=', values: [m[3]!] };
    m = /^(!?)\s*([\w./-]+)$/.exec(term);
    if (m) return { key: m[2]!, op: m[1] ? '!exists' : 'exists', values: [] };
    throw StatusError.of(400, `unable to parse requirement: found '${term}', expected: identifier`);
  });
  return { requirements, text };
}

/** True when every requirement holds for the given key → value map (absent key = undefined). */
export function matches(selector: Selector | undefined, values: Record<string, string | undefined>): boolean {
  if (!selector) return true;
  return selector.requirements.every((r) => {
    const v = values[r.key];
    switch (r.op) {
      case '=':
        return v === r.values[0];
      case '!=':
        return v !== r.values[0];
      case 'exists':
        return v !== undefined;
      case '!exists':
        return v === undefined;
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
    }
  });
}

/** Splits on commas outside parentheses; empty terms are an error. */
function splitTopLevel(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if ((c === ',' && depth === 0) || i === text.length) {
      const term = text.slice(start, i).trim();
      if (!term) throw StatusError.of(400, `invalid selector: '${text}'`);
      terms.push(term);
      start = i + 1;
    }
  }
  return terms;
}
