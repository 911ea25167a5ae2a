/**
 * The 409 an apply gets when it would change fields other managers own: reason Conflict, one
 * cause per field (`type: FieldManagerConflict`, serialised under `reason`), and the message
 * kubectl prints before its advice: `Apply failed with 1 conflict: conflict with "mgr1": .spec.x`.
 *
 * Mirrors apimachinery `pkg/util/managedfields/internal/conflict.go` (NewConflictError,
 * getConflictMessage, printManager: an updater is named with its apiVersion, `"m" using v1`) and
 * `pkg/api/errors/errors.go` (NewApplyConflict: no name or kind in the details).
 */
import { StatusError } from '../../../../shared/status.js';
import { pathString } from './field-set.js';
import { parseIdentifier } from './managed-fields.js';
import type { Conflict } from './updater.js';

function printManager(id: string): string {
  const info = parseIdentifier(id);
  let text = JSON.stringify(info.manager);
  if (info.subresource) text += ` with subresource ${JSON.stringify(info.subresource)}`;
  if (info.operation === 'Update') text += ` using ${info.apiVersion ?? ''}`;
  return text;
}

function conflictMessage(conflicts: Conflict[]): string {
  if (conflicts.length === 1) {
    const [c] = conflicts;
    return `Apply failed with 1 conflict: conflict with ${printManager(c!.manager)}: ${pathString(c!.path)}`;
  }
  const byManager = new Map<string, string[]>();
  for (const c of conflicts)
    byManager.set(c.manager, [...(byManager.get(c.manager) ?? []), pathString(c.path)]);
  const lines: string[] = [];
  for (const manager of [...byManager.keys()].sort()) {
    lines.push(`conflicts with ${printManager(manager)}:`);
    for (const p of byManager.get(manager)!) lines.push(`- ${p}`);
  }
  return `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
}

export function conflictError(conflicts: Conflict[]): StatusError {
  return StatusError.of(409, conflictMessage(conflicts), 'Conflict', {
    causes: conflicts.map((c) => ({
      reason: 'FieldManagerConflict',
      message: `conflict with ${printManager(c.manager)}`,
      field: pathString(c.path),
    })),
  });
}
