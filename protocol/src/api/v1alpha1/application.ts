import { z } from "zod";
import {
  API_VERSION,
  condition,
  envVar,
  objectMeta,
  objectName,
  pythonIdentifier,
  resources,
  retryPolicy,
} from "./common.js";
import { dnsStem, shortHash } from "../../labels.js";

/** A container image reference, as spec.image and spec.functions[].image take it. */
export const containerImage = z
  .string()
  .min(1)
  .max(1024)
  // A node cannot pull a name with whitespace or control characters (InvalidImageName).
  // eslint-disable-next-line no-control-regex -- the rule is exactly about control characters
  .regex(/^[^\s\x00-\x1f\x7f]+$/, { message: "must be an image reference without spaces or control characters" });

/** Longest node-loss toleration of function pods (a day: beyond it a lost node's calls wait too long). */
export const NODE_LOSS_TOLERATION_MAX = 86400;

export const functionSpec = z
  .object({
    name: pythonIdentifier.meta({ description: "Name of the @function in the code." }),
    resources: resources.optional(),
    timeoutSeconds: z.number().int().min(1).max(86400).optional().meta({
      description: "Timeout of one attempt of a call, in seconds. Defaults to the decorator's timeout, else 300.",
    }),
    retries: retryPolicy.optional(),
    minContainers: z.number().int().min(0).max(1000).optional().meta({
      description: "Containers kept running even when idle (0 scales to zero).",
    }),
    maxContainers: z.number().int().min(1).max(1000).optional().meta({
      description: "Upper bound of containers for this function.",
    }),
    concurrency: z.number().int().min(1).max(1000).optional().meta({
      description: "Calls one container runs at the same time.",
    }),
    secrets: z
      .array(objectName.meta({ description: "Secret name." }))
      .max(64)
      .optional()
      .meta({ description: "Secrets whose keys become environment variables of the containers." }),
    env: z.array(envVar).max(256).optional().meta({ description: "Extra environment variables." }),
    image: containerImage.optional().meta({
      description:
        "Container image of this function's containers. Defaults to spec.image, else the stock runtime image.",
    }),
  })
  .meta({
    description: "Settings of one function; anything left out comes from the decorator in the code.",
    "x-kubernetes-validations": [
      {
        rule: "!has(self.minContainers) || !has(self.maxContainers) || self.minContainers <= self.maxContainers",
        message: "minContainers must be <= maxContainers",
      },
    ],
  });
export type FunctionSpec = z.infer<typeof functionSpec>;

export const applicationSpec = z
  .object({
    entrypoint: pythonIdentifier.meta({ description: "The @application function that a request calls." }),
    image: containerImage.optional().meta({
      description:
        "Container image holding the code and the Trellis runtime. Defaults to the operator's stock runtime image.",
    }),
    imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).optional().meta({
      description: "Pull policy of the function containers.",
    }),
    module: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*|[^\0]+\.py)$/, {
        message: "must be a dotted Python module name or a path to a .py file",
      })
      .optional()
      .meta({ description: "Python module or .py file to import. Defaults to app.py when source is given." }),
    source: z
      .object({
        inline: z.string().min(1).max(262144).optional().meta({ description: "Python source code of the module." }),
        configMapRef: z
          .object({
            name: objectName.meta({ description: "ConfigMap in the Application's namespace." }),
            key: z.string().min(1).max(253).default("app.py").meta({ description: "Key holding the source." }),
          })
          .optional()
          .meta({ description: "ConfigMap holding the Python source." }),
      })
      .optional()
      .meta({
        description: "Code shipped without an image build. Exactly one of inline or configMapRef.",
        "x-kubernetes-validations": [
          {
            rule: "has(self.inline) != has(self.configMapRef)",
            message: "exactly one of inline or configMapRef must be set",
          },
        ],
      }),
    functions: z
      .array(functionSpec)
      .max(256)
      .optional()
      .meta({
        description: "Per-function settings, keyed by name.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
      }),
    defaults: functionSpec
      .omit({ name: true, image: true })
      .optional()
      .meta({ description: "Settings applied to every function that does not set them." }),
    env: z
      .array(envVar)
      .max(256)
      .optional()
      .meta({ description: "Environment variables of every function container." }),
    nodeLossTolerationSeconds: z.number().int().min(0).max(NODE_LOSS_TOLERATION_MAX).optional().meta({
      description:
        "Seconds a function pod stays bound to a node that is not ready or unreachable before it is evicted and its calls move to another node (tolerationSeconds of the node.kubernetes.io/not-ready and unreachable NoExecute tolerations). Defaults to the operator's setting (the chart's functionPods.nodeLossTolerationSeconds, 30).",
    }),
    requests: z
      .object({
        ttlSecondsAfterFinished: z.number().int().min(0).max(31536000).optional().meta({
          description: "Delete a request's FunctionCalls this long after the request finishes.",
        }),
      })
      .optional()
      .meta({ description: "Settings of the requests made to this application." }),
  })
  .meta({
    description: "What can be called: the code, its image and the settings of its functions.",
    "x-kubernetes-validations": [
      {
        rule: "has(self.module) || has(self.source) || has(self.image)",
        message: "one of module, source or image must be set",
      },
    ],
  });
export type ApplicationSpec = z.infer<typeof applicationSpec>;

/** Tensorlake's entrypoint manifest fields of an application (pickles made by the app's own worker). */
export const tensorlakeEntrypoint = z
  .object({
    input_serializer: z.string().max(32).meta({ description: "Serializer of the inputs (json)." }),
    inputs_base64: z.string().max(65536).meta({ description: "Pickled parameter names and type hints, base64." }),
    output_serializer: z.string().max(32).meta({ description: "Serializer of the output (json)." }),
    output_type_hints_base64: z.string().max(65536).meta({ description: "Pickled return type hint, base64." }),
  })
  .meta({ description: "What Tensorlake's client reads from an application's manifest to call it." });
export type TensorlakeEntrypoint = z.infer<typeof tensorlakeEntrypoint>;

export const discoveredFunction = z
  .object({
    name: z.string().meta({ description: "Function name." }),
    parameters: z
      .array(z.string().max(256).meta({ description: "Parameter name." }))
      .max(256)
      .optional()
      .meta({ description: "Parameter names, in order." }),
    tensorlake: tensorlakeEntrypoint.optional(),
    async: z.boolean().optional().meta({ description: "True for async def functions." }),
    application: z.boolean().optional().meta({ description: "True for the @application entrypoint." }),
    timeoutSeconds: z.number().optional().meta({ description: "Timeout set in the decorator." }),
    maxConcurrency: z.number().int().optional().meta({ description: "max_concurrency set in the decorator." }),
    minContainers: z.number().int().optional().meta({ description: "min_containers set in the decorator." }),
    maxContainers: z.number().int().optional().meta({ description: "max_containers set in the decorator." }),
  })
  .meta({ description: "A function the runtime found in the code." });

export const functionStatus = z
  .object({
    name: z.string().meta({ description: "Function name." }),
    ready: z.number().int().min(0).default(0).meta({ description: "Containers ready to take calls." }),
    busy: z.number().int().min(0).default(0).meta({ description: "Containers running at least one call." }),
    queued: z.number().int().min(0).default(0).meta({ description: "Calls waiting for a container." }),
    running: z.number().int().min(0).default(0).meta({ description: "Calls running." }),
  })
  .meta({ description: "Containers and calls of one function." });

export const applicationStatus = z
  .object({
    observedGeneration: z.number().int().optional().meta({ description: "Generation last reconciled." }),
    conditions: z
      .array(condition)
      .optional()
      .meta({
        description: "Ready, CodeLoaded, ContainersHealthy, ...",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      }),
    functions: z.array(functionStatus).optional().meta({ description: "Per-function counts." }),
    discovered: z.array(discoveredFunction).optional().meta({ description: "Function table reported by the runtime." }),
    readyContainers: z.number().int().optional().meta({ description: "Ready containers, all functions." }),
  })
  .meta({ description: "Observed state of the Application." });
export type ApplicationStatus = z.infer<typeof applicationStatus>;

/** Longest Application name: it is a label value of every pod and call of the application. */
export const APPLICATION_NAME_MAX = 63;

export const application = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal("Application"),
    metadata: objectMeta,
    spec: applicationSpec,
    status: applicationStatus.optional(),
  })
  .refine((a) => (a.metadata.name ?? "").length <= APPLICATION_NAME_MAX, {
    path: ["metadata", "name"],
    // The same rule as the CRD's root CEL rule (operator/src/crds/sources.ts).
    message: `an Application name is at most ${APPLICATION_NAME_MAX} characters (it is a label value of its objects)`,
  });
export type Application = z.infer<typeof application>;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Tensorlake names an application after its function: `my_app`, or `Class.method` for a @cls method. */
const PY_IDENT = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
/** Lowercase identifiers with single inner underscores: `_` → `-` is one-to-one on these. */
const SIMPLE_IDENT = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/**
 * The `{app}` of the HTTP routes: an Application's object name, or a Tensorlake application name
 * (a Python identifier such as `my_app`); `applicationObjectName` maps both to the object.
 */
export const applicationRef = z
  .string()
  .min(1)
  .max(127)
  .refine((v) => DNS_LABEL.test(v) || PY_IDENT.test(v), {
    message:
      "must be an Application name (a DNS label) or a Tensorlake application name (a Python identifier, or Class.method)",
  });

/**
 * The Application object name of a Tensorlake application name. Tensorlake names are Python
 * identifiers; object names are DNS labels. A name that is already a DNS label stays as it is
 * (`greet`); lowercase names with single inner `_` swap `_` for `-` (`my_app` → `my-app`); any
 * other name (capitals, leading, trailing or doubled `_`, over 63 characters) becomes its DNS
 * stem plus a hash of the exact name (`My_App` → `my-app-<8 hex>`), so that two Tensorlake names
 * never share an object. The exact name is kept in the `trellis.dev/tensorlake-name` annotation.
 */
export function applicationObjectName(name: string): string {
  if (DNS_LABEL.test(name)) return name;
  if (name.length <= 63 && SIMPLE_IDENT.test(name)) return name.replace(/_/g, "-");
  const stem = (dnsStem(name) || "app").slice(0, 54).replace(/-+$/, "");
  return `${stem}-${shortHash(name, 8)}`;
}
