{{/* Rules the operator needs in every namespace it serves (exactly the verbs it uses). */}}
{{- define "trellis.watchedRules" -}}
# FunctionCalls: the engine creates children, writes status, labels passed tail links settled,
# deletes finished requests.
- apiGroups: [trellis.dev]
  resources: [functioncalls, functioncalls/status]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [trellis.dev]
  resources: [applications, applications/status]
  verbs: [get, list, watch, patch]
# The deploy route (Tensorlake's POST/DELETE …/applications) creates and deletes Applications,
# after SubjectAccessReview says the caller may do the same.
- apiGroups: [trellis.dev]
  resources: [applications]
  verbs: [create, delete]
# Function pods carry an ownerReference (blockOwnerDeletion) to their Application.
- apiGroups: [trellis.dev]
  resources: [applications/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [pods, configmaps]
  verbs: [get, list, watch, create, delete]
# The deploy route server-side applies the code ConfigMaps of deployed applications.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [patch]
# The web view's logs route reads a call's worker log, after SubjectAccessReview says the
# caller may get pods/log too.
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Per-pod credential Secrets (owned by their pod), deleted with their pod; never read back.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/* The namespaces the admission policies apply in: the watched ones, else all (empty). */}}
{{- define "trellis.admissionNamespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
matchResources:
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: In
        values: {{ toJson .Values.operator.watchNamespaces }}
{{- end -}}
{{- end -}}
