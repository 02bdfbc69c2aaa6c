using TorchSharp;

namespace BertSharp.Tests.Checkpoints;

internal static class CheckpointTestUtil
{
    public static string Fixture(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "fixtures", "tiny-hf-bert", .. parts]);

    /// <summary>The raw bytes of a tensor in C order (a copy).</summary>
    public static byte[] Bytes(torch.Tensor t)
    {
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }

    public static void AssertBitEqual(torch.Tensor expected, torch.Tensor actual, string name)
    {
        Assert.True(expected.dtype == actual.dtype, $"{name}: dtype {actual.dtype}, expected {expected.dtype}");
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{name}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        Assert.True(Bytes(expected).AsSpan().SequenceEqual(Bytes(actual)), $"{name}: bytes differ");
    }

    public static void DisposeAll<T>(Dictionary<T, torch.Tensor> tensors) where T : notnull
    {
        foreach (var t in tensors.Values) t.Dispose();
    }

    /// <summary>Asserts a one-line error message that names the file and contains each fragment.</summary>
    public static void AssertMessage(Exception ex, string path, params string[] fragments)
    {
        Assert.IsAssignableFrom<BertSharpException>(ex);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Contains(path, ex.Message);
        foreach (var f in fragments) Assert.Contains(f, ex.Message);
    }
}
