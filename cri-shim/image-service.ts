/**
 * The CRI `runtime.v1.ImageService` over gRPC, on the image templates of images.ts: what a kubelet
 * asks before it creates a container (ImageStatus, PullImage) and what crictl lists.
 *
 * Mirrors containerd's CRI plugin image files (image_list.go, image_status.go, image_pull.go,
 * image_remove.go): ImageStatus of an image the runtime lacks answers an empty image, not an
 * error; PullImage answers the image ID (`image_ref`), which the kubelet then creates the
 * container with; removing an image that is not there succeeds. Differences: nothing is fetched —
 * a "pull" finds a template of that name or fails with NOT_FOUND (as a registry without the
 * image would); there is no ImageFsInfo; `uid` and `username` stay unset (the templates have no
 * USER).
 */
import grpc from '@grpc/grpc-js';
import type * as T from '../shared/cri/types.js';
import { CriError, toGrpcError } from './errors.js';
import type { ImageConfig, ImageStore } from './images.js';

type Handler<M extends T.ImageMethodName> = (
  req: T.ImageServiceMethods[M][0],
) => T.ImageServiceMethods[M][1] | Promise<T.ImageServiceMethods[M][1]>;

function unary<M extends T.ImageMethodName>(fn: Handler<M>): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request as T.ImageServiceMethods[M][0]))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toGrpcError(err)),
      );
  };
}

function imageMessage(store: ImageStore, img: ImageConfig): T.Image {
  return {
    id: img.id,
    repo_tags: [img.repoTag],
    repo_digests: [],
    size: store.size(img),
    uid: null,
    username: '',
    spec: { image: img.id, annotations: {}, user_specified_image: '' },
    pinned: false,
  };
}

const refOf = (spec: T.ImageSpecIn | null | undefined): string => spec?.image?.trim() ?? '';

export function imageServiceImplementation(store: ImageStore): grpc.UntypedServiceImplementation {
  const impl: { [M in T.ImageMethodName]: grpc.handleUnaryCall<unknown, unknown> } = {
    ListImages: unary<'ListImages'>((req) => {
      const want = refOf(req.filter?.image);
      const images = want ? [store.find(want)].filter((i) => i !== undefined) : store.images();
      return { images: images.map((i) => imageMessage(store, i)) };
    }),
    ImageStatus: unary<'ImageStatus'>((req) => {
      const ref = refOf(req.image);
      if (!ref) throw CriError.invalid('image must be set');
      const img = store.find(ref);
      return {
        image: img ? imageMessage(store, img) : null,
        info: (req.verbose && img ? { info: JSON.stringify({ template: img.dir }) } : {}) as T.Labels,
      };
    }),
    PullImage: unary<'PullImage'>((req) => {
      const ref = refOf(req.image);
      if (!ref) throw CriError.invalid('image must be set');
      return { image_ref: store.pull(ref).id };
    }),
    RemoveImage: unary<'RemoveImage'>((req) => {
      const ref = refOf(req.image);
      if (!ref) throw CriError.invalid('image must be set');
      store.remove(ref);
      return {};
    }),
  };
  return impl;
}
