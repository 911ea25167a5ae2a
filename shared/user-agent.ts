/**
 * The User-Agent our clients send, in client-go's shape (`DefaultKubernetesUserAgent` in
 * staging/src/k8s.io/client-go/rest/config.go: `<command>/<version> (<os>/<arch>) kubernetes/<commit>`).
 * The apiserver derives an Update's field manager from the part before the first `/`
 * (apiserver/endpoints/handlers/write-options.ts, as upstream's prefixFromUserAgent), so what kexec
 * or a kubelet-sim writes shows under `kexec` or `kubelet` in `metadata.managedFields`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from './package-root.js';

let version: string | undefined;

export function userAgent(command: string): string {
  version ??= (
    JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
  ).version;
  return `${command}/v${version} (${process.platform}/${process.arch}) kexec-lab`;
}
