// The Kubernetes side of the deploy route (Tensorlake's `POST …/applications` and `DELETE
// …/applications/{app}`): server-side apply of the code ConfigMap and the Application, and the
// reads and deletes around it, behind a narrow interface that the route's tests fake.
import { API_VERSION, type Application, LABEL, labelValue } from "../../../protocol/index.js";
import { type KubeClient, type KubeObject, isNotFound, resourcePath } from "../kube/index.js";

// types.ts names this store in the API's dependencies; the Application type is spelled out here.
type ApplicationObj = Application & KubeObject;

/** Field manager of everything the deploy route writes (`kubectl get -o yaml --show-managed-fields`). */
export const DEPLOY_FIELD_MANAGER = "trellis-http-deploy";
/** `app.kubernetes.io/component` of code ConfigMaps. */
export const CODE_COMPONENT = "tensorlake-code";

export type CodeConfigMap = KubeObject & {
  immutable?: boolean;
  binaryData?: Record<string, string>;
};

export interface DeployStore {
  /** The Application as the API server has it now (not the cache: a deploy must see the last one). */
  getApplication(namespace: string, name: string): Promise<ApplicationObj | undefined>;
  /** Server-side apply, forced: a deploy is an upsert and takes over the fields it sets. */
  apply<T extends KubeObject>(obj: T): Promise<T>;
  /** The code ConfigMaps of one Application (by label). */
  listCodeConfigMaps(namespace: string, application: string): Promise<CodeConfigMap[]>;
  deleteConfigMap(namespace: string, name: string): Promise<void>;
  /** Deletes the Application (its pods and code go by garbage collection); false when it was absent. */
  deleteApplication(namespace: string, name: string): Promise<boolean>;
}

const APPLY_PATCH = "application/apply-patch+yaml";

export function kubeDeployStore(client: Pick<KubeClient, "request">): DeployStore {
  const appRef = (namespace: string, name: string) => ({
    apiVersion: API_VERSION,
    kind: "Application",
    namespace,
    name,
  });
  return {
    async getApplication(namespace, name) {
      try {
        return await client.request<ApplicationObj>("GET", resourcePath(appRef(namespace, name)));
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    },
    apply: <T extends KubeObject>(obj: T) =>
      client.request<T>(
        "PATCH",
        resourcePath({
          apiVersion: obj.apiVersion ?? "",
          kind: obj.kind ?? "",
          namespace: obj.metadata.namespace,
          name: obj.metadata.name,
        }),
        // JSON is YAML: the apply content type takes it as it is.
        { body: obj, contentType: APPLY_PATCH, query: { fieldManager: DEPLOY_FIELD_MANAGER, force: true } },
      ),
    async listCodeConfigMaps(namespace, application) {
      const list = await client.request<{ items?: CodeConfigMap[] }>(
        "GET",
        resourcePath({ apiVersion: "v1", kind: "ConfigMap", namespace }),
        {
          query: {
            labelSelector: `${LABEL.application}=${labelValue(application)},${LABEL.component}=${CODE_COMPONENT}`,
          },
        },
      );
      return list.items ?? [];
    },
    async deleteConfigMap(namespace, name) {
      try {
        await client.request("DELETE", resourcePath({ apiVersion: "v1", kind: "ConfigMap", namespace, name }));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    },
    async deleteApplication(namespace, name) {
      try {
        await client.request("DELETE", resourcePath(appRef(namespace, name)), {
          query: { propagationPolicy: "Background" },
        });
        return true;
      } catch (e) {
        if (isNotFound(e)) return false;
        throw e;
      }
    },
  };
}
