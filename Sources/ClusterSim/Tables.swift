import Foundation
import Shared

/// Server-side printing (`meta.k8s.io/v1` Table), which `kubectl get` asks
/// for and renders as its familiar columns.
enum Tables {
    static func nodes(_ nodes: [JSONValue], now: Date = Date()) -> JSONValue {
        let columns: [(String, String, Int)] = [
            ("Name", "name", 0), ("Status", "", 0), ("Roles", "", 0), ("Age", "", 0), ("Version", "", 0),
            ("Internal-IP", "", 1), ("Container-Runtime", "", 1),
        ]
        let rows: [JSONValue] = nodes.map { node in
            let labels = node.stringMap("metadata.labels")
            let roles = labels.keys.filter { $0.hasPrefix("node-role.kubernetes.io/") }
                .map { String($0.dropFirst("node-role.kubernetes.io/".count)) }.sorted()
            var status = ClusterStore.isNodeReady(node) ? "Ready" : "NotReady"
            if node[["spec", "unschedulable"]]?.boolValue == true { status += ",SchedulingDisabled" }
            let created = node[["metadata", "creationTimestamp"]]?.stringValue.flatMap(ClusterStore.parseTimestamp)
            let address = node[["status", "addresses"]]?.arrayValue?.first { $0[["type"]]?.stringValue == "InternalIP" }
            var metadata = node[["metadata"]] ?? .object([:])
            metadata[["managedFields"]] = nil
            return .object([
                "cells": .array([
                    node[["metadata", "name"]] ?? .string(""), .string(status),
                    .string(roles.isEmpty ? "<none>" : roles.joined(separator: ",")),
                    .string(created.map { humanDuration(now.timeIntervalSince($0)) } ?? "<unknown>"),
                    node[["status", "nodeInfo", "kubeletVersion"]] ?? .string(""),
                    address?[["address"]] ?? .string("<none>"),
                    node[["status", "nodeInfo", "containerRuntimeVersion"]] ?? .string(""),
                ]),
                "object": .object([
                    "kind": .string("PartialObjectMetadata"), "apiVersion": .string("meta.k8s.io/v1"),
                    "metadata": metadata,
                ]),
            ])
        }
        return .object([
            "kind": .string("Table"), "apiVersion": .string("meta.k8s.io/v1"), "metadata": .object([:]),
            "columnDefinitions": .array(
                columns.map { name, format, priority in
                    .object([
                        "name": .string(name), "type": .string("string"), "format": .string(format),
                        "description": .string(""), "priority": .number(Double(priority)),
                    ])
                }),
            "rows": .array(rows),
        ])
    }

    /// kubectl's short ages: `45s`, `3m20s`, `2h`, `5d`.
    static func humanDuration(_ seconds: TimeInterval) -> String {
        let total = Int(seconds)
        if total < 0 { return "0s" }
        if total < 120 { return "\(total)s" }
        let minutes = total / 60
        if minutes < 10 { return total % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(total % 60)s" }
        if minutes < 180 { return "\(minutes)m" }
        let hours = minutes / 60
        if hours < 48 { return "\(hours)h" }
        return "\(hours / 24)d"
    }
}
