#!/usr/bin/env python3
"""Offline checks of k8s/: every manifest parses, selectors find their pods,
Services and probes name ports the containers declare, HPAs and PDBs target real
Deployments, NetworkPolicies select real pods and ports, and every SLUICE_*
variable set in a manifest is one the code reads. Exits non-zero with one line
per problem."""
import os
import pathlib
import re
import sys

import yaml

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
k8s = root / "k8s"
problems = []


def problem(text):
    problems.append(text)


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
documents = []
for resource in kustomization.get("resources", []):
    path = k8s / resource
    if not path.exists():
        problem(f"kustomization lists missing file {resource}")
        continue
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is None:
            continue
        for key in ("apiVersion", "kind", "metadata"):
            if key not in doc:
                problem(f"{resource}: a document has no {key}")
        if "name" not in doc.get("metadata", {}):
            problem(f"{resource}: a {doc.get('kind')} has no metadata.name")
        documents.append((resource, doc))

deployments = {d["metadata"]["name"]: d for _, d in documents if d.get("kind") == "Deployment"}
if not deployments:
    problem("no Deployments found")

source_text = "\n".join(
    p.read_text(errors="ignore")
    for folder in ("common", "gateway", "broker", "auth", "allinone")
    for p in (root / folder).glob("*.[ch]pp"))


def container_ports(deployment):
    names, numbers = set(), set()
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for port in container.get("ports", []):
            numbers.add(port["containerPort"])
            if "name" in port:
                names.add(port["name"])
    return names, numbers


for name, deployment in deployments.items():
    spec = deployment["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    if not matches(spec["selector"].get("matchLabels"), labels):
        problem(f"Deployment {name}: selector does not match its pod labels")
    names, numbers = container_ports(deployment)
    for container in spec["template"]["spec"]["containers"]:
        if not container.get("image"):
            problem(f"Deployment {name}: container {container['name']} has no image")
        for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container.get(probe_kind)
            if not probe:
                continue
            for handler in ("httpGet", "grpc", "tcpSocket"):
                if handler in probe:
                    port = probe[handler]["port"]
                    if port not in names and port not in numbers:
                        problem(f"Deployment {name}: {probe_kind} uses undeclared port {port}")
        if "readinessProbe" not in container:
            problem(f"Deployment {name}: container {container['name']} has no readinessProbe")
        for env in container.get("env", []):
            var = env["name"]
            if var.startswith("SLUICE_") and f'"{var}"' not in source_text:
                problem(f"Deployment {name}: sets {var}, which Sluice does not read")

for resource, doc in documents:
    kind, name = doc.get("kind"), doc["metadata"]["name"]
    if kind == "Service":
        selector = doc["spec"].get("selector", {})
        targets = [d for d in deployments.values() if matches(selector, d["spec"]["template"]["metadata"]["labels"])]
        if not targets:
            problem(f"Service {name}: selector matches no Deployment")
        for port in doc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for deployment in targets:
                names, numbers = container_ports(deployment)
                if target not in names and target not in numbers:
                    problem(f"Service {name}: targetPort {target} not declared by {deployment['metadata']['name']}")
    elif kind == "HorizontalPodAutoscaler":
        ref = doc["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or ref.get("name") not in deployments:
            problem(f"HPA {name}: targets unknown {ref.get('kind')} {ref.get('name')}")
        if doc["spec"].get("minReplicas", 1) > doc["spec"]["maxReplicas"]:
            problem(f"HPA {name}: minReplicas above maxReplicas")
    elif kind == "PodDisruptionBudget":
        selector = doc["spec"]["selector"].get("matchLabels")
        targets = [d for d in deployments.values() if matches(selector, d["spec"]["template"]["metadata"]["labels"])]
        if not targets:
            problem(f"PDB {name}: selector matches no Deployment")
        for deployment in targets:
            if doc["spec"].get("minAvailable", 0) >= deployment["spec"].get("replicas", 1):
                problem(f"PDB {name}: minAvailable blocks every voluntary disruption of {deployment['metadata']['name']}")
    elif kind == "NetworkPolicy":
        selector = doc["spec"]["podSelector"].get("matchLabels")
        targets = [d for d in deployments.values() if matches(selector, d["spec"]["template"]["metadata"]["labels"])]
        if not targets:
            problem(f"NetworkPolicy {name}: podSelector matches no Deployment")
        for rule in doc["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                peer_selector = peer.get("podSelector", {}).get("matchLabels")
                if peer_selector and not any(
                        matches(peer_selector, d["spec"]["template"]["metadata"]["labels"]) for d in deployments.values()):
                    problem(f"NetworkPolicy {name}: a peer selector matches no Deployment")
            for port in rule.get("ports", []):
                for deployment in targets:
                    names, numbers = container_ports(deployment)
                    if port["port"] not in numbers and port["port"] not in names:
                        problem(f"NetworkPolicy {name}: port {port['port']} not declared by {deployment['metadata']['name']}")

for line in problems:
    print(line)
print(f"{len(documents)} manifests checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
