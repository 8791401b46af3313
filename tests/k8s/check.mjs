#!/usr/bin/env node
// Strict check of Sluice's Kubernetes manifests.
//
// Every kustomization (k8s/base, each overlay, the KEDA component, the
// prometheus-adapter rule, the Helm post-renderer applied to a chart release) is
// rendered with `kubectl kustomize`, and every object is checked:
//   1. its apiVersion/kind is a real Kubernetes API type (kubernetes-models), or one
//      of the few custom resources listed in CUSTOM_RESOURCES;
//   2. it validates against that type's OpenAPI schema (kubernetes-models: types,
//      required fields, enums);
//   3. it has no unknown field anywhere: a walk along the field lists of
//      @kubernetes/client-node's generated models (attributeTypeMap), or of the
//      hand-written field tree of a custom resource;
//   4. cross-references hold: every ConfigMap, Secret and key an env/envFrom/volume
//      refers to exists (in the render, or in what a mastodon/chart release creates
//      for the mastodon-chart overlay), selectors find pods, named ports exist, gRPC
//      health probes name a service the tiers register, `dns:///` targets name a
//      headless Service with that port, HPAs own Deployments that set no replicas,
//      Pods metrics are served by the shipped prometheus-adapter rule, every tier has
//      a PodDisruptionBudget, topology spread and the restricted pod security
//      settings, and every SLUICE_* variable set is one the code reads.
// Then each case under tests/k8s/broken/ must FAIL with its expected message.
//
// Usage: node tests/k8s/check.mjs [repository root]   (after tests/k8s/install-deps.sh)
// Prints one line per problem, then "N passed, N failed"; exits 1 on any failure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(process.argv[2] ?? path.join(here, '..', '..'));
const models = await import('@kubernetes/client-node/dist/gen/models/all.js').catch(() =>
  import(path.join(here, 'node_modules/@kubernetes/client-node/dist/gen/models/all.js')));

// ---------------------------------------------------------------------------------
// What to check.

const CHART_RELEASE = path.join(here, 'chart', 'mastodon-release.yaml');
const CHART_RELEASE_STREAMING_INGRESS = path.join(here, 'chart', 'mastodon-release-streaming-ingress.yaml');
// What selects Sluice's gateway pods and names their client port, read from the
// gateway Deployment as k8s/base renders it (so renaming either there shows here).
function gatewayPods() {
  const base = execFileSync('kubectl', ['kustomize', path.join(root, 'k8s/base')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const gateway = parseAll(base).find((o) => o.kind === 'Deployment' && o.metadata.name === 'sluice-gateway');
  const port = gateway.spec.template.spec.containers.flatMap((c) => c.ports ?? []).find((p) => p.containerPort === 4000);
  return { selector: gateway.spec.selector.matchLabels, portName: port.name };
}

// refs: 'strict' = every reference must resolve inside the render (plus `external`);
// 'none' = a building block that is not deployable alone (k8s/base): references to
// ConfigMaps/Secrets are not resolved, everything else is checked;
// 'foreign' = objects that are not Sluice's (the chart's): schema only.
const TARGETS = [
  { name: 'k8s/base', dir: 'k8s/base', refs: 'none' },
  { name: 'k8s/overlays/standalone', dir: 'k8s/overlays/standalone', refs: 'strict' },
  { name: 'k8s/overlays/mastodon-chart', dir: 'k8s/overlays/mastodon-chart', refs: 'strict', external: CHART_RELEASE },
  { name: 'k8s/overlays/test-loopback', dir: 'k8s/overlays/test-loopback', refs: 'strict' },
  { name: 'standalone + k8s/components/keda', dir: 'tests/k8s/render/standalone-keda', refs: 'strict' },
  { name: 'standalone + k8s/components/connections-autoscaling', dir: 'tests/k8s/render/standalone-connections-autoscaling', refs: 'strict' },
  { name: 'standalone + k8s/components/internal-tls', dir: 'tests/k8s/render/standalone-internal-tls', refs: 'strict' },
  { name: 'k8s/prometheus-adapter', dir: 'k8s/prometheus-adapter', refs: 'strict' },
  {
    name: 'mastodon-chart post-renderer on a chart release',
    postRender: { script: 'k8s/overlays/mastodon-chart/post-render/helm-post-render.sh', input: CHART_RELEASE },
    refs: 'foreign', // the chart's objects: schema and route only
    expectStreamingToSluice: ['mastodon.local'],
  },
  {
    name: 'mastodon-chart post-renderer on a release with a streaming Ingress and two hosts',
    postRender: { script: 'k8s/overlays/mastodon-chart/post-render/helm-post-render.sh', input: CHART_RELEASE_STREAMING_INGRESS },
    refs: 'foreign',
    expectStreamingToSluice: ['mastodon.local', 'social.local'],
  },
];

// Custom resources: no Kubernetes schema; their model package checks types, and this
// field tree (true = any value below) makes unknown fields errors.
const CUSTOM_RESOURCES = {
  'keda.sh/v1alpha1/ScaledObject': {
    module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject',
    fields: {
      apiVersion: true, kind: true, metadata: 'V1ObjectMeta',
      spec: {
        scaleTargetRef: { apiVersion: true, kind: true, name: true, envSourceContainerName: true },
        pollingInterval: true, cooldownPeriod: true, initialCooldownPeriod: true, idleReplicaCount: true,
        minReplicaCount: true, maxReplicaCount: true,
        fallback: { failureThreshold: true, replicas: true, behavior: true },
        advanced: {
          restoreToOriginalReplicaCount: true,
          horizontalPodAutoscalerConfig: { name: true, behavior: 'V2HorizontalPodAutoscalerBehavior' },
          scalingModifiers: { formula: true, target: true, activationTarget: true, metricType: true },
        },
        triggers: [{ type: true, name: true, metadata: true, metricType: true, useCachedMetrics: true, authenticationRef: { name: true, kind: true } }],
      },
    },
  },
};

// SLUICE_* variables the manifests set ahead of the code (issue 10): allowed, with a
// note, until the code reads them.
const PENDING_VARIABLES = { SLUICE_DRAIN_SECONDS: 'gateway drain window (issue 10, item 5)' };

// ---------------------------------------------------------------------------------
// Facts from the sources.

function sourceFiles(dirs) {
  const out = [];
  for (const d of dirs) {
    const full = path.join(root, d);
    if (!fs.existsSync(full)) continue;
    for (const f of fs.readdirSync(full)) if (/\.(cpp|hpp)$/.test(f)) out.push(fs.readFileSync(path.join(full, f), 'utf8'));
  }
  return out.join('\n');
}
const tierSources = sourceFiles(['broker', 'auth', 'allinone']);
const allSources = sourceFiles(['common', 'gateway', 'broker', 'auth', 'allinone']);
// gRPC health service names the tiers register ("" is the whole server).
const healthServices = new Set(['']);
for (const m of tierSources.matchAll(/kServiceName\s*=\s*"([^"]+)"/g)) healthServices.add(m[1]);
for (const m of tierSources.matchAll(/SetServingStatus\(\s*"([^"]*)"/g)) healthServices.add(m[1]);
const knownVariables = new Set([...allSources.matchAll(/"(SLUICE_[A-Z0-9_]+)"/g)].map((m) => m[1]));

// Custom metrics the shipped prometheus-adapter rule serves.
function adapterMetrics() {
  const names = new Set();
  const file = path.join(root, 'k8s/prometheus-adapter/rules-configmap.yaml');
  if (!fs.existsSync(file)) return names;
  const cm = YAML.parse(fs.readFileSync(file, 'utf8'));
  for (const rule of YAML.parse(cm.data['config.yaml']).rules ?? []) if (rule?.name?.as) names.add(rule.name.as);
  return names;
}
const servedMetrics = adapterMetrics();

// ---------------------------------------------------------------------------------
// Rendering.

function render(target) {
  if (target.postRender) {
    return execFileSync(path.join(root, target.postRender.script), {
      input: fs.readFileSync(target.postRender.input), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'],
    });
  }
  return execFileSync('kubectl', ['kustomize', path.join(root, target.dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function parseAll(text) {
  return YAML.parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(d.errors[0].message);
    return d.toJS();
  }).filter((o) => o != null);
}

// ---------------------------------------------------------------------------------
// Schema checks.

const modelCache = new Map();
async function kubernetesModel(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (modelCache.has(key)) return modelCache.get(key);
  let result = null;
  if (CUSTOM_RESOURCES[key]) {
    const mod = await import(CUSTOM_RESOURCES[key].module);
    result = { Model: mod[kind], fields: CUSTOM_RESOURCES[key].fields };
  } else if (typeof apiVersion === 'string' && typeof kind === 'string' && /^[A-Za-z0-9]+$/.test(kind)) {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [null, apiVersion];
    try {
      const mod = await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`);
      if (mod[kind]) {
        const v = version[0].toUpperCase() + version.slice(1);
        const groupPrefix = (group ?? 'core').split('.')[0].replace(/^./, (c) => c.toUpperCase());
        const className = [`${v}${kind}`, `${groupPrefix}${v}${kind}`].find((n) => models[n]?.getAttributeTypeMap);
        result = { Model: mod[kind], className };
      }
    } catch { /* not a Kubernetes type */ }
  }
  modelCache.set(key, result);
  return result;
}

function attributeMap(className) {
  const cls = models[className];
  return cls?.getAttributeTypeMap ? cls.getAttributeTypeMap() : null;
}

// Walks `value` along client-node type `type`; reports unknown fields.
function walkType(value, type, where, problems) {
  if (value == null) return;
  if (type === 'any' || type === '{ [key: string]: any; }' || type === 'Array<any>') return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(value)) return; // type errors are the schema's
    value.forEach((item, i) => walkType(item, m[1], `${where}[${i}]`, problems));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value !== 'object' || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) walkType(v, m[1], `${where}.${k}`, problems);
    return;
  }
  const map = attributeMap(type);
  if (!map) return; // string, number, boolean, Date, IntOrString…
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${where}: expected an object (${type})`);
    return;
  }
  const fields = new Map(map.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) problems.push(`${where}.${k}: unknown field (not in ${type})`);
    else walkType(v, fields.get(k), `${where}.${k}`, problems);
  }
}

// Walks `value` along a hand-written field tree (custom resources).
function walkTree(value, tree, where, problems) {
  if (tree === true || value == null) return;
  if (typeof tree === 'string') return walkType(value, tree, where, problems);
  if (Array.isArray(tree)) {
    if (Array.isArray(value)) value.forEach((item, i) => walkTree(item, tree[0], `${where}[${i}]`, problems));
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (!(k in tree)) problems.push(`${where}.${k}: unknown field`);
    else walkTree(v, tree[k], `${where}.${k}`, problems);
  }
}

async function checkSchema(object, label, problems) {
  const info = await kubernetesModel(object.apiVersion, object.kind);
  if (!info) {
    problems.push(`${label}: unknown apiVersion/kind ${object.apiVersion} ${object.kind}`);
    return;
  }
  try {
    new info.Model(structuredClone(object)).validate();
  } catch (e) {
    const errors = e.errors ?? [{ instancePath: '', message: e.message }];
    for (const err of errors) problems.push(`${label}: schema: ${err.instancePath || '/'} ${err.message}`);
  }
  if (info.fields) walkTree(object, info.fields, label, problems);
  else if (info.className) walkType(object, info.className, label, problems);
  else problems.push(`${label}: no field list for a strict check of ${object.apiVersion} ${object.kind}`);
}

// ---------------------------------------------------------------------------------
// Cross-reference checks.

const matches = (selector, labels) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

function podSpecs(objects) {
  return objects.filter((o) => o.kind === 'Deployment' && o.spec?.template).map((d) => ({ owner: d, pod: d.spec.template }));
}

function containerPorts(pod) {
  const names = new Set(); const numbers = new Set();
  for (const c of pod.spec?.containers ?? []) for (const p of c.ports ?? []) {
    numbers.add(p.containerPort); if (p.name) names.add(p.name);
  }
  return { names, numbers };
}
const portDeclared = (ports, port) => ports.names.has(port) || ports.numbers.has(port);

function dataKeys(object) {
  return new Set([...Object.keys(object.data ?? {}), ...Object.keys(object.stringData ?? {}), ...Object.keys(object.binaryData ?? {})]);
}

function checkReferences(objects, external, refs, problems) {
  const all = [...objects, ...external];
  const find = (kind, name) => all.find((o) => o.kind === kind && o.metadata?.name === name);
  // The value a container gets for a variable, as Kubernetes decides: its own `env` (the
  // last entry of that name, a value or a ConfigMap or Secret key of the render), else
  // the last `envFrom` source of the render that has it (with its prefix), else
  // undefined. `unknown` when the render cannot tell (another valueFrom, an object it
  // does not hold).
  const unknown = Symbol('unknown');
  const keyOf = (kind, name, key) => {
    const object = find(kind, name);
    if (!object) return unknown;
    if (object.stringData?.[key] !== undefined) return object.stringData[key];
    if (object.data?.[key] === undefined) return undefined;
    return kind === 'Secret' ? Buffer.from(object.data[key], 'base64').toString('utf8') : object.data[key];
  };
  const variable = (c, name) => {
    const own = (c.env ?? []).filter((e) => e.name === name).pop();
    if (own) {
      const vf = own.valueFrom;
      if (!vf) return own.value ?? '';
      if (vf.configMapKeyRef) return keyOf('ConfigMap', vf.configMapKeyRef.name, vf.configMapKeyRef.key) ?? unknown;
      if (vf.secretKeyRef) return keyOf('Secret', vf.secretKeyRef.name, vf.secretKeyRef.key) ?? unknown;
      return unknown;
    }
    let found;
    for (const from of c.envFrom ?? []) {
      const prefix = from.prefix ?? '';
      if (!name.startsWith(prefix)) continue;
      const ref = from.configMapRef ? ['ConfigMap', from.configMapRef.name] : from.secretRef ? ['Secret', from.secretRef.name] : null;
      if (!ref) continue;
      // A source the render does not hold (k8s/base's ConfigMap) sets nothing known;
      // in a deployable render its absence is a problem of its own, above.
      const value = keyOf(ref[0], ref[1], name.slice(prefix.length));
      if (value !== undefined && value !== unknown) found = value;
    }
    return found;
  };
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const pods = podSpecs(objects);

  const ref = (where, kind, name, key, optional) => {
    if (refs !== 'strict' || optional) return;
    const target = find(kind, name);
    if (!target) problems.push(`${where}: ${kind} ${name} is referenced but not defined`);
    else if (key !== undefined && !dataKeys(target).has(key)) problems.push(`${where}: ${kind} ${name} has no key ${key}`);
  };

  for (const { owner, pod } of pods) {
    const name = `Deployment ${owner.metadata.name}`;
    const spec = pod.spec ?? {};
    if (!matches(owner.spec.selector?.matchLabels, pod.metadata?.labels)) problems.push(`${name}: selector does not match its pod labels`);
    if (spec.serviceAccountName && spec.serviceAccountName !== 'default') ref(name, 'ServiceAccount', spec.serviceAccountName);
    const sa = find('ServiceAccount', spec.serviceAccountName);
    if (!(spec.automountServiceAccountToken === false || (spec.automountServiceAccountToken === undefined && sa?.automountServiceAccountToken === false))) {
      problems.push(`${name}: automountServiceAccountToken is not false`);
    }
    if (spec.securityContext?.runAsNonRoot !== true) problems.push(`${name}: pod securityContext.runAsNonRoot is not true`);
    if (!(spec.topologySpreadConstraints?.length > 0)) problems.push(`${name}: no topologySpreadConstraints`);
    for (const t of spec.topologySpreadConstraints ?? []) {
      if (!matches(t.labelSelector?.matchLabels, pod.metadata?.labels)) problems.push(`${name}: a topologySpreadConstraint does not select its own pods`);
    }
    if (!objects.some((o) => o.kind === 'PodDisruptionBudget' && matches(o.spec?.selector?.matchLabels, pod.metadata?.labels))) {
      problems.push(`${name}: no PodDisruptionBudget`);
    }
    for (const v of spec.volumes ?? []) {
      if (v.configMap) ref(`${name} volume ${v.name}`, 'ConfigMap', v.configMap.name, undefined, v.configMap.optional);
      if (v.secret) ref(`${name} volume ${v.name}`, 'Secret', v.secret.secretName, undefined, v.secret.optional);
    }
    const ports = containerPorts(pod);
    const containerNames = new Set((spec.containers ?? []).map((c) => c.name));
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const where = `${name} container ${c.name}`;
      const sc = c.securityContext ?? {};
      const seccomp = sc.seccompProfile?.type ?? spec.securityContext?.seccompProfile?.type;
      if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${where}: seccompProfile is not RuntimeDefault`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: capabilities do not drop ALL`);
      if (sc.runAsUser === 0) problems.push(`${where}: runs as root`);
      if (!c.image) problems.push(`${where}: no image`);
      if (/example\.(org|com)/.test(c.image ?? '')) problems.push(`${where}: placeholder image ${c.image}`);
      for (const e of c.envFrom ?? []) {
        if (e.configMapRef) ref(where, 'ConfigMap', e.configMapRef.name, undefined, e.configMapRef.optional);
        if (e.secretRef) ref(where, 'Secret', e.secretRef.name, undefined, e.secretRef.optional);
      }
      const defined = new Set();
      const env = new Map();
      for (const e of c.env ?? []) {
        const vf = e.valueFrom ?? {};
        if (vf.configMapKeyRef) ref(`${where} env ${e.name}`, 'ConfigMap', vf.configMapKeyRef.name, vf.configMapKeyRef.key, vf.configMapKeyRef.optional);
        if (vf.secretKeyRef) ref(`${where} env ${e.name}`, 'Secret', vf.secretKeyRef.name, vf.secretKeyRef.key, vf.secretKeyRef.optional);
        if (vf.resourceFieldRef) {
          const target = vf.resourceFieldRef.containerName ?? c.name;
          if (!containerNames.has(target)) problems.push(`${where} env ${e.name}: resourceFieldRef names unknown container ${target}`);
          const [kindOf, res] = vf.resourceFieldRef.resource.split('.');
          const tc = spec.containers.find((x) => x.name === target);
          if (kindOf === 'limits' && tc?.resources?.limits?.[res] === undefined) {
            problems.push(`${where} env ${e.name}: reads limits.${res} but container ${target} sets no such limit (it would get the node's)`);
          }
        }
        for (const m of (e.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          if (!defined.has(m[1])) problems.push(`${where} env ${e.name}: $(${m[1]}) is not an earlier variable of the container`);
        }
        if (/^SLUICE_/.test(e.name) && !knownVariables.has(e.name)) {
          if (PENDING_VARIABLES[e.name]) notes.add(`${e.name} is set but not read by the code yet: ${PENDING_VARIABLES[e.name]}`);
          else problems.push(`${where}: sets ${e.name}, which Sluice does not read`);
        }
        defined.add(e.name);
        env.set(e.name, e.value);
      }
      // dns:/// targets: a headless Service of the render with that port.
      for (const varName of env.keys()) {
        const value = variable(c, varName);
        const m = /^dns:\/\/\/([a-z0-9-]+)(?:\.[^:]*)?:(\d+)$/.exec(typeof value === 'string' ? value : '');
        if (!m) continue;
        const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === m[1]);
        if (!svc) problems.push(`${where} env ${varName}: ${value} names no Service ${m[1]}`);
        else {
          if (svc.spec?.clusterIP !== 'None') problems.push(`${where} env ${varName}: Service ${m[1]} is not headless (clusterIP: None)`);
          if (!(svc.spec?.ports ?? []).some((p) => p.port === Number(m[2]))) problems.push(`${where} env ${varName}: Service ${m[1]} has no port ${m[2]}`);
          // An auth pod whose PostgreSQL is away is not ready yet answers its cached
          // lookups (docs/scale-out.md#auth-replicas): it must stay in the DNS answer.
          if (varName === 'SLUICE_AUTH_ADDR' && svc.spec?.publishNotReadyAddresses !== true) {
            problems.push(`${where} env ${varName}: Service ${m[1]} drops not-ready auth pods from DNS (set publishNotReadyAddresses: true), so a PostgreSQL outage leaves new gateways no auth at all`);
          }
        }
      }
      for (const probeKind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const probe = c[probeKind];
        if (!probe) continue;
        for (const handler of ['httpGet', 'grpc', 'tcpSocket']) {
          if (probe[handler] && !portDeclared(ports, probe[handler].port)) problems.push(`${where}: ${probeKind} uses undeclared port ${probe[handler].port}`);
        }
        if (probe.grpc && !healthServices.has(probe.grpc.service ?? '')) {
          problems.push(`${where}: ${probeKind} asks gRPC health for service "${probe.grpc.service}", which no tier registers (${[...healthServices].filter(Boolean).join(', ')})`);
        }
      }
      if (c.name !== undefined && !c.readinessProbe) problems.push(`${where}: no readinessProbe`);
      // Drain: preStop sleep + SLUICE_DRAIN_SECONDS must fit in the grace period.
      const drainSetting = variable(c, 'SLUICE_DRAIN_SECONDS');
      if (typeof drainSetting === 'string' && drainSetting !== '') {
        const drain = Number(drainSetting);
        const cmd = c.lifecycle?.preStop?.exec?.command ?? [];
        const sleep = cmd[0] === 'sleep' ? Number(cmd[1]) : (c.lifecycle?.preStop?.sleep?.seconds ?? 0);
        const grace = spec.terminationGracePeriodSeconds ?? 30;
        if (sleep + drain + 5 > grace) problems.push(`${where}: preStop ${sleep}s + SLUICE_DRAIN_SECONDS ${drain}s + 5s margin exceed terminationGracePeriodSeconds ${grace}`);
      }
    }
  }

  for (const o of objects) {
    const name = `${o.kind} ${o.metadata?.name}`;
    if (o.kind === 'Service' && o.spec?.selector) {
      const targets = pods.filter(({ pod }) => matches(o.spec.selector, pod.metadata?.labels));
      if (!targets.length) problems.push(`${name}: selector matches no Deployment`);
      for (const p of o.spec.ports ?? []) for (const { owner, pod } of targets) {
        if (!portDeclared(containerPorts(pod), p.targetPort ?? p.port)) problems.push(`${name}: targetPort ${p.targetPort} not declared by ${owner.metadata.name}`);
      }
    } else if (o.kind === 'HorizontalPodAutoscaler' || o.kind === 'ScaledObject') {
      const refd = o.spec?.scaleTargetRef ?? {};
      const target = deployments.find((d) => d.metadata.name === refd.name && (refd.kind ?? 'Deployment') === 'Deployment');
      if (!target) problems.push(`${name}: targets unknown ${refd.kind} ${refd.name}`);
      else if (target.spec.replicas !== undefined) problems.push(`${name}: Deployment ${target.metadata.name} sets replicas, which fights the autoscaler on every apply`);
      const min = o.spec?.minReplicas ?? o.spec?.minReplicaCount ?? 1;
      const max = o.spec?.maxReplicas ?? o.spec?.maxReplicaCount;
      if (max !== undefined && min > max) problems.push(`${name}: minimum replicas above maximum`);
      for (const m of o.spec?.metrics ?? []) {
        if (m.type === 'Pods' && !servedMetrics.has(m.pods?.metric?.name)) {
          problems.push(`${name}: Pods metric ${m.pods?.metric?.name} is served by no rule in k8s/prometheus-adapter`);
        }
      }
    } else if (o.kind === 'PodDisruptionBudget') {
      const targets = pods.filter(({ pod }) => matches(o.spec?.selector?.matchLabels, pod.metadata?.labels));
      if (!targets.length) problems.push(`${name}: selector matches no Deployment`);
      for (const { owner } of targets) {
        if (o.spec.minAvailable !== undefined && owner.spec.replicas !== undefined && o.spec.minAvailable >= owner.spec.replicas) {
          problems.push(`${name}: minAvailable blocks every voluntary disruption of ${owner.metadata.name}`);
        }
      }
    } else if (o.kind === 'NetworkPolicy') {
      const targets = pods.filter(({ pod }) => matches(o.spec?.podSelector?.matchLabels, pod.metadata?.labels));
      if (!targets.length) problems.push(`${name}: podSelector matches no Deployment`);
      for (const rule of o.spec?.ingress ?? []) {
        for (const peer of rule.from ?? []) {
          const sel = peer.podSelector?.matchLabels;
          if (sel && !pods.some(({ pod }) => matches(sel, pod.metadata?.labels))) problems.push(`${name}: a peer selector matches no Deployment`);
        }
        for (const p of rule.ports ?? []) for (const { owner, pod } of targets) {
          if (!portDeclared(containerPorts(pod), p.port)) problems.push(`${name}: port ${p.port} not declared by ${owner.metadata.name}`);
        }
      }
    } else if (o.kind === 'Ingress') {
      for (const rule of o.spec?.rules ?? []) for (const p of rule.http?.paths ?? []) {
        const s = p.backend?.service;
        if (!s || refs !== 'strict') continue;
        const svc = all.find((x) => x.kind === 'Service' && x.metadata?.name === s.name);
        if (!svc) problems.push(`${name}: path ${p.path} goes to Service ${s.name}, which is not defined`);
      }
    }
  }
  // A broker that is stopped must keep serving until every gateway (and auth pod) that
  // finds brokers through DNS has moved its channels away: their next resolution
  // (SLUICE_BROKER_RESOLVE_SECONDS, 10 by default), after the DNS TTL of a headless
  // Service's answer (5 s: CoreDNS's default `ttl`; a cluster that raises it needs a
  // longer wait), plus the handover (2 s). Read as the binary reads it: digits, or
  // empty for unset.
  let resolveSeconds = 0;
  for (const { owner, pod } of pods) {
    for (const c of pod.spec?.containers ?? []) {
      const brokers = variable(c, 'SLUICE_BROKER_ADDR');
      const resolve = variable(c, 'SLUICE_BROKER_RESOLVE_SECONDS');
      if (brokers === unknown || resolve === unknown) {
        notes.add(`Deployment ${owner.metadata.name} container ${c.name}: SLUICE_BROKER_ADDR or SLUICE_BROKER_RESOLVE_SECONDS comes from outside the render; the brokers' preStop wait is not checked against it`);
        continue;
      }
      if (!/^dns:\/\/\//.test(brokers ?? '')) continue;
      const text = resolve || '10';
      const seconds = /^[0-9]+$/.test(text) ? Number(text) : NaN;
      if (!(seconds >= 1)) {
        problems.push(`Deployment ${owner.metadata.name} container ${c.name}: SLUICE_BROKER_RESOLVE_SECONDS is not a whole number of seconds`);
        continue;
      }
      resolveSeconds = Math.max(resolveSeconds, seconds);
    }
  }
  for (const { owner, pod } of pods) {
    for (const c of pod.spec?.containers ?? []) {
      if (!resolveSeconds || !(c.command ?? []).some((arg) => /sluice-broker$/.test(arg))) continue;
      const cmd = c.lifecycle?.preStop?.exec?.command ?? [];
      const sleep = cmd[0] === 'sleep' ? Number(cmd[1]) : (c.lifecycle?.preStop?.sleep?.seconds ?? 0);
      const needed = resolveSeconds + 5 + 2;
      const where = `Deployment ${owner.metadata.name} container ${c.name}`;
      if (sleep < needed) {
        problems.push(`${where}: preStop waits ${sleep}s, but gateways need ${needed}s (resolution every ${resolveSeconds}s + DNS TTL 5s + handover 2s) to move its channels away; stopped sooner, a rollout leaves channels without a broker`);
      }
      const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
      if (sleep + 5 > grace) problems.push(`${where}: preStop ${sleep}s + the server's 5s grace exceed terminationGracePeriodSeconds ${grace}`);
    }
  }

  const tiers = deployments.length;
  if (tiers === 0 && objects.some((o) => o.kind === 'HorizontalPodAutoscaler')) problems.push('autoscaler without Deployments');
}

// ---------------------------------------------------------------------------------
// Running.

const notes = new Set();

async function checkTarget(target) {
  const problems = [];
  let objects;
  try {
    objects = parseAll(render(target));
  } catch (e) {
    return { problems: [`render failed: ${String(e.stderr || e.message).trim().split('\n').slice(-3).join(' | ')}`], count: 0 };
  }
  const seen = new Set();
  for (const o of objects) {
    const label = `${o.kind ?? '?'} ${o.metadata?.name ?? '?'}`;
    if (seen.has(`${o.apiVersion}/${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`)) problems.push(`${label}: defined twice`);
    seen.add(`${o.apiVersion}/${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`);
    await checkSchema(o, label, problems);
  }
  const external = target.external ? parseAll(fs.readFileSync(target.external, 'utf8')) : [];
  if (target.refs !== 'foreign') checkReferences(objects, external, target.refs, problems);
  if (target.expectStreamingToSluice) {
    // Every host's /api/v1/streaming, in whichever Ingress the chart put it, must lead
    // to a Service that selects Sluice's gateway pods on their streaming port.
    const { selector: GATEWAY_POD_SELECTOR, portName: GATEWAY_PORT_NAME } = gatewayPods();
    const routed = new Set();
    for (const ing of objects.filter((o) => o.kind === 'Ingress')) {
      for (const rule of ing.spec?.rules ?? []) {
        for (const p of rule.http?.paths ?? []) {
          if (p.path !== '/api/v1/streaming') continue;
          const name = p.backend?.service?.name;
          const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === name);
          const port = svc?.spec?.ports?.find((x) => x.port === p.backend?.service?.port?.number);
          const selector = JSON.stringify(Object.entries(svc?.spec?.selector ?? {}).sort());
          if (selector !== JSON.stringify(Object.entries(GATEWAY_POD_SELECTOR).sort()) || port?.targetPort !== GATEWAY_PORT_NAME) {
            problems.push(`Ingress ${ing.metadata.name}, host ${rule.host}: /api/v1/streaming goes to Service ${name}, ` +
                          `which does not select Sluice's gateways on port ${GATEWAY_PORT_NAME} (selector ${selector})`);
          } else {
            routed.add(rule.host);
          }
        }
      }
    }
    for (const host of target.expectStreamingToSluice) {
      if (!routed.has(host)) problems.push(`host ${host}: /api/v1/streaming does not reach Sluice`);
    }
  }
  return { problems, count: objects.length };
}

let passed = 0; let failed = 0;
for (const target of TARGETS) {
  const { problems, count } = await checkTarget(target);
  if (problems.length) {
    failed++;
    console.log(`FAIL ${target.name} (${count} objects)`);
    for (const p of problems) console.log(`  ${p}`);
  } else {
    passed++;
    console.log(`ok   ${target.name} (${count} objects, strict)`);
  }
}

// Broken cases: each must fail, with a problem matching its expectation.
const brokenRoot = path.join(here, 'broken');
for (const dir of fs.readdirSync(brokenRoot).sort()) {
  const caseFile = path.join(brokenRoot, dir, 'case.json');
  if (!fs.existsSync(caseFile)) continue;
  const spec = JSON.parse(fs.readFileSync(caseFile, 'utf8'));
  const target = {
    name: `broken/${dir}`, dir: path.relative(root, path.join(brokenRoot, dir)), refs: 'strict',
    external: spec.external ? path.join(brokenRoot, dir, spec.external) : undefined,
  };
  const { problems } = await checkTarget(target);
  const expected = new RegExp(spec.expect);
  const hit = problems.find((p) => expected.test(p));
  if (hit) {
    passed++;
    console.log(`ok   broken/${dir} refused: ${hit}`);
  } else {
    failed++;
    console.log(`FAIL broken/${dir} was not refused with /${spec.expect}/; problems: ${problems.length ? problems.join(' | ') : 'none'}`);
  }
}

for (const n of notes) console.log(`note: ${n}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
