/**
 * The authorization verb of an HTTP method, as both authorizing servers map it: the apiserver's
 * RequestInfoFactory (k8s.io/apiserver `pkg/endpoints/request/requestinfo.go`, before it refines
 * `get` into `list`/`watch` and connect subresources into `create`) and the kubelet's
 * GetRequestAttributes (`pkg/kubelet/server/auth.go`).
 */
export const METHOD_VERBS: Readonly<Record<string, string>> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};
