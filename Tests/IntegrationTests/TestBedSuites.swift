import Testing

/// Every suite that brings up a whole test bed runs inside this one, one
/// test at a time: several beds booting at once on two cores overload the
/// machine and race for loopback ports.
@Suite("test-bed suites, one bed at a time", .serialized)
struct TestBedSuites {}
