from engine.measure.samples import SampleBuffer


def test_sample_buffer_grows_and_snapshots():
    buffer = SampleBuffer(capacity=16)
    for i in range(100):
        buffer.append(i * 10, i)
    starts, latencies = buffer.snapshot()
    assert len(buffer) == 100 and starts[-1] == 990 and latencies[42] == 42
    assert list(buffer.snapshot(since=98)[1]) == [98, 99]
    buffer.reserve(1000)
    assert list(buffer.snapshot()[1]) == list(range(100))
