#!/usr/bin/env python3
"""Times principalmapper (PyPI `principalmapper` 1.1.5) phase by phase against
an IAM endpoint, for `custodian-bench --aws N --pmapper`.

usage: python pmapper_driver.py ENDPOINT PRINCIPAL [PRINCIPAL...]

A PRINCIPAL is pmapper's searchable name, e.g. `user/svc-00042` or
`role/role-00007`. Prints one JSON object per line, flushed as each phase
ends, so the caller keeps the finished phases when it stops a slow one:

  {"phase": "fetch", ...}    IAM users, roles, groups, policies (the API calls)
  {"phase": "edges", ...}    admin status + every edge checker `graph create` runs
  {"phase": "resource_policies", ...}
  {"phase": "graph", ...}    what pmapper concluded, for the comparison: every node
                             (ARN, is_admin) and every edge (source ARN, destination
                             ARN, reason, short_reason; short_reason "AssumeRole" is
                             the STS checker's trust edge, any other an escalation)
  {"phase": "reach", ...}    per principal: its reachable principals, with pmapper's
                             own search (query_utils.get_search_list, the BFS behind
                             `preset connected` and `can X do Y`)
  {"phase": "privesc", ...}  `preset privesc *`: for every non-admin node,
                             presets.privesc.can_privesc, and the path it found

This is `gathering.create_graph` split into its steps (same calls, same order).
"""
import collections
import collections.abc
import json
import resource
import sys
import time

# principalmapper 1.1.5 imports Mapping from collections (removed in 3.10).
for _n in ("Mapping", "MutableMapping"):
    setattr(collections, _n, getattr(collections.abc, _n))

import botocore.session  # noqa: E402
from principalmapper.common import Graph  # noqa: E402
from principalmapper.graphing import edge_identification, gathering  # noqa: E402
from principalmapper.querying import query_utils  # noqa: E402
from principalmapper.querying.presets import privesc  # noqa: E402


def emit(**kv):
    kv["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(kv), flush=True)


def main():
    endpoint, principals = sys.argv[1], sys.argv[2:]
    services = list(edge_identification.checker_map.keys())  # what `graph create` checks by default
    client_args = {s: {"endpoint_url": endpoint} for s in
                   ["sts", "iam", "s3", "sns", "sqs", "kms", "secretsmanager", "lambda", "ec2",
                    "cloudformation", "codebuild", "sagemaker", "autoscaling", "ssm"]}
    session = botocore.session.get_session()

    t = time.perf_counter()
    sts = session.create_client("sts", **client_args["sts"])
    account = sts.get_caller_identity()["Account"]
    iam = session.create_client("iam", **client_args["iam"])
    res = gathering.get_nodes_groups_and_policies(iam)
    nodes, groups, policies = res["nodes"], res["groups"], res["policies"]
    emit(phase="fetch", s=time.perf_counter() - t, nodes=len(nodes), groups=len(groups),
         policies=len(policies))

    t = time.perf_counter()
    gathering.update_admin_status(nodes, None)
    edges = edge_identification.obtain_edges(session, services, nodes, ["us-east-1"], None, None,
                                             client_args)
    emit(phase="edges", s=time.perf_counter() - t, edges=len(edges),
         admins=sum(1 for n in nodes if n.is_admin), services=services)

    t = time.perf_counter()
    for fetch in (lambda: gathering.get_s3_bucket_policies(session, client_args),
                  lambda: gathering.get_sns_topic_policies(session, ["us-east-1"], None, client_args),
                  lambda: gathering.get_sqs_queue_policies(session, account, ["us-east-1"], None,
                                                           client_args),
                  lambda: gathering.get_kms_key_policies(session, ["us-east-1"], None, client_args),
                  lambda: gathering.get_secrets_manager_policies(session, ["us-east-1"], None,
                                                                 client_args)):
        try:  # create_graph ignores failures here too
            policies.extend(fetch())
        except Exception:  # noqa: BLE001
            pass
    graph = Graph(nodes, edges, policies, groups,
                  {"account_id": account, "pmapper_version": "1.1.5"})
    emit(phase="resource_policies", s=time.perf_counter() - t)

    emit(phase="graph",
         nodes=[[n.arn, bool(n.is_admin)] for n in graph.nodes],
         edges=[[e.source.arn, e.destination.arn, e.reason, e.short_reason] for e in graph.edges])

    for principal in principals:
        node = graph.get_node_by_searchable_name(principal)
        if node is None:
            emit(phase="reach", principal=principal, error=f"no node {principal}")
            return 1
        t = time.perf_counter()
        paths = query_utils.get_search_list(graph, node)
        reached = {p[-1].destination.arn for p in paths}
        emit(phase="reach", s=time.perf_counter() - t, principal=principal, is_admin=node.is_admin,
             reachable=len(reached), paths=len(paths))

    # `pmapper query 'preset privesc *'` (print_privesc_results), as data.
    t = time.perf_counter()
    found = []
    for node in graph.nodes:
        if node.is_admin:
            continue
        can, edge_list = privesc.can_privesc(graph, node)
        if can:
            found.append([node.arn, [[e.destination.arn, e.reason, e.short_reason] for e in edge_list]])
    emit(phase="privesc", s=time.perf_counter() - t, principals=found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
