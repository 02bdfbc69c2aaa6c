namespace BertSharp.Tests.Training;

public class NativeHeapTests
{
    [Fact]
    public void TheFixedMmapThresholdIsAcceptedOnGlibc()
    {
        // CI and the development machine run Linux with glibc: the P/Invoke must bind and mallopt accept the value.
        bool glibc = OperatingSystem.IsLinux() && File.Exists("/proc/self/maps")
            && File.ReadLines("/proc/self/maps").Any(l => l.Contains("libc.so.6"));
        if (!glibc) return;
        Assert.True(NativeHeap.Configure());
        Assert.True(NativeHeap.Configure());   // idempotent
    }
}
