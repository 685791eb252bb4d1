// Validates Kubernetes manifests offline: every object against the JSON schema of its apiVersion/kind (the schemas
// compiled into the kubernetes-models packages: Kubernetes 1.x core types, KEDA, Prometheus Operator), then the
// deployment rules of this project (restricted pod security, resources, a PodDisruptionBudget per Deployment).
//   kubectl kustomize deploy/k8s-overlays/prod | node validate-k8s.mjs <label>
// Exit 0 when all pass, 1 with one line per problem.
import { parseAllDocuments } from "yaml";

const label = process.argv[2] ?? "stdin";
const text = await new Promise((resolve, reject) => {
  let data = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => (data += chunk));
  process.stdin.on("end", () => resolve(data));
  process.stdin.on("error", reject);
});

// apiVersion group -> package holding its models; core and built-in groups come from kubernetes-models.
const packages = {
  "keda.sh": "@kubernetes-models/keda",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

const problems = [];
const objects = [];
for (const document of parseAllDocuments(text)) {
  if (document.errors.length > 0) {
    problems.push(`YAML: ${document.errors.map((e) => e.message).join("; ")}`);
    continue;
  }
  const object = document.toJS();
  if (object !== null && object !== undefined) {
    objects.push(object);
  }
}

const nameOf = (o) => `${o?.kind ?? "?"}/${o?.metadata?.name ?? "?"}`;

for (const object of objects) {
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    problems.push(`${nameOf(object)}: apiVersion and kind are required`);
    continue;
  }
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const specifier = `${packages[group] ?? "kubernetes-models"}/${group === "" ? "" : group + "/"}${version}/${kind}`;
  let Model;
  try {
    Model = (await import(specifier))[kind];
  } catch {
    problems.push(`${nameOf(object)}: no schema for ${apiVersion} ${kind} (${specifier})`);
    continue;
  }
  try {
    new Model(object).validate();
  } catch (error) {
    problems.push(`${nameOf(object)}: ${error.message}`);
  }
}

// Restricted pod security and resources on every pod template.
for (const object of objects) {
  const pod = object.kind === "Deployment" || object.kind === "Job" ? object.spec?.template?.spec : undefined;
  if (!pod) {
    continue;
  }
  const where = nameOf(object);
  const podSecurity = pod.securityContext ?? {};
  if (podSecurity.runAsNonRoot !== true) problems.push(`${where}: securityContext.runAsNonRoot must be true`);
  if (podSecurity.seccompProfile?.type !== "RuntimeDefault") problems.push(`${where}: securityContext.seccompProfile.type must be RuntimeDefault`);
  for (const container of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
    const at = `${where} container ${container.name}`;
    const security = container.securityContext ?? {};
    if (security.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation must be false`);
    if (security.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem must be true`);
    if (!(security.capabilities?.drop ?? []).includes("ALL")) problems.push(`${at}: capabilities.drop must include ALL`);
    if (!container.resources?.requests?.memory || !container.resources?.limits?.memory) problems.push(`${at}: memory request and limit are required`);
    if (!container.resources?.requests?.cpu) problems.push(`${at}: a cpu request is required`);
    const tmp = (container.volumeMounts ?? []).find((m) => m.mountPath === "/tmp");
    const tmpVolume = tmp && (pod.volumes ?? []).find((v) => v.name === tmp.name);
    if (!tmpVolume?.emptyDir) problems.push(`${at}: /tmp must be an emptyDir (the root filesystem is read-only)`);
  }
}

// Every Deployment is covered by a PodDisruptionBudget in its namespace.
const budgets = objects.filter((o) => o.kind === "PodDisruptionBudget");
for (const deployment of objects.filter((o) => o.kind === "Deployment")) {
  const labels = deployment.spec?.template?.metadata?.labels ?? {};
  const covered = budgets.some((b) =>
    b.metadata?.namespace === deployment.metadata?.namespace &&
    Object.entries(b.spec?.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    Object.keys(b.spec?.selector?.matchLabels ?? {}).length > 0);
  if (!covered) problems.push(`${nameOf(deployment)}: no PodDisruptionBudget selects its pods`);
}

for (const problem of problems) {
  console.error(`${label}: ${problem}`);
}
console.log(`${label}: ${objects.length} objects, ${problems.length} problem(s)`);
process.exit(problems.length === 0 ? 0 : 1);
