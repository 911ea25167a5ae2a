/**
 * Static bearer tokens, as kube-apiserver's `--token-auth-file`: a CSV file whose lines are
 * `token,user,uid[,"group1,group2"]`; blank lines and `#` comments are ignored. A malformed line
 * is a startup error naming its line number.
 *
 * Mirrors k8s.io/apiserver `pkg/authentication/token/tokenfile/tokenfile.go` (NewCSV): at least
 * three fields, the optional fourth a comma-separated group list. Tokens are compared in constant
 * time (both sides hashed to equal-length digests, then crypto.timingSafeEqual), and every entry
 * is compared so the time taken does not tell which token came close.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { UserInfo } from './tokens.js';

export interface StaticTokenEntry {
  token: string;
  user: UserInfo;
}

/** Splits one CSV record: comma-separated fields, double-quoted fields with `""` escapes. */
function csvFields(line: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return undefined; // unterminated quote
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ',') return undefined; // text after the closing quote
    } else {
      const end = line.indexOf(',', i);
      field = line.slice(i, end < 0 ? line.length : end);
      if (field.includes('"')) return undefined;
      i = end < 0 ? line.length : end;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

/** Parses the file's text; `source` names it in errors. */
export function parseTokenAuthFile(text: string, source = 'token auth file'): StaticTokenEntry[] {
  const entries: StaticTokenEntry[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `${source} line ${index + 1}`;
    const fields = csvFields(line)?.map((f) => f.trim());
    if (!fields) throw new Error(`${where}: malformed CSV`);
    if (fields.length < 3 || fields.length > 4)
      throw new Error(`${where}: expected token,user,uid[,"group1,group2"], got ${fields.length} fields`);
    const [token, name, uid, groupList] = fields as [string, string, string, string | undefined];
    if (!token) throw new Error(`${where}: empty token`);
    if (/\s/.test(token)) throw new Error(`${where}: token contains whitespace`);
    if (!name) throw new Error(`${where}: empty user name`);
    if (seen.has(token)) throw new Error(`${where}: duplicate token`);
    seen.add(token);
    const groups = (groupList ?? '')
      .split(',')
      .map((g) => g.trim())
      .filter(Boolean);
    entries.push({ token, user: { name, groups, ...(uid ? { uid } : {}) } });
  });
  return entries;
}

export function readTokenAuthFile(file: string): StaticTokenEntry[] {
  return parseTokenAuthFile(readFileSync(file, 'utf8'), file);
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Looks bearer tokens up in the file's entries, in constant time per entry. */
export class StaticTokenAuthenticator {
  private readonly entries: { digest: Buffer; user: UserInfo }[];

  constructor(entries: StaticTokenEntry[]) {
    this.entries = entries.map((e) => ({ digest: digest(e.token), user: e.user }));
  }

  authenticate(token: string): UserInfo | undefined {
    const candidate = digest(token);
    let found: UserInfo | undefined;
    for (const e of this.entries) {
      // Equal-length digests; no early exit.
      if (timingSafeEqual(candidate, e.digest) && !found) found = e.user;
    }
    return found && { ...found, groups: [...found.groups] };
  }
}
