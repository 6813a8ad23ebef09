/// Which files of the snapshot folder go after a new snapshot is saved.
/// Snapshots are `k8s-upgrade-pre-<target>-<epoch seconds>.db`; etcdctl
/// writes `<name>.part` first and renames it, so a `.part` left behind is a
/// save that was killed.
public enum SnapshotRetention {
    /// The names to remove: every `.part` of a killed save, and the oldest
    /// snapshots beyond the newest `keep`. A name in `protected` (the
    /// rollback point of the upgrade in flight) is never removed, and
    /// counts among those kept. Names of other files are left alone.
    public static func prune(_ names: [String], keep: Int, protected: Set<String>) -> [String] {
        let prefix = "k8s-upgrade-pre-"
        let parts = names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".db.part") }
        let snapshots = names.compactMap { name -> (name: String, time: Int)? in
            guard name.hasPrefix(prefix), name.hasSuffix(".db") else { return nil }
            let stem = name.dropLast(3)
            guard let dash = stem.lastIndex(of: "-"), let time = Int(stem[stem.index(after: dash)...]) else {
                return nil
            }
            return (name, time)
        }
        .sorted { ($0.time, $0.name) > ($1.time, $1.name) }
        let kept = Set(snapshots.prefix(max(keep, 0)).map(\.name)).union(protected)
        return parts.sorted() + snapshots.map(\.name).filter { !kept.contains($0) }.sorted()
    }
}
