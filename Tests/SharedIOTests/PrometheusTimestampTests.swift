import SharedIO
import Testing

@Suite struct PrometheusTimestampTests {
    @Test(arguments: [
        (1_796_110_181.0432, "1796110181.043"),
        (1_796_110_181.9996, "1796110182.000"),
        (1_796_110_181.0, "1796110181.000"),
        (0.05, "0.050"),
    ])
    func queryTimesKeepTheirMilliseconds(seconds: Double, text: String) {
        #expect(Prometheus.timestamp(seconds) == text)
    }
}
