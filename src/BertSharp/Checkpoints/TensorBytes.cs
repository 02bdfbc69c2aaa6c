using TorchSharp;

namespace BertSharp.Checkpoints;

/// <summary>
/// Raw-byte plumbing shared by the checkpoint readers and writers: moving the little-endian bytes of a
/// contiguous CPU tensor to and from a stream without an intermediate managed copy, and overflow-checked
/// element counts.
/// </summary>
internal static class TensorBytes
{
    /// <summary>The largest span handed to a stream at once. TorchSharp's <c>Tensor.bytes</c> is a
    /// <see cref="Span{T}"/>, so one tensor of more than 2 GiB has to be moved in pieces.</summary>
    internal const int DefaultChunkBytes = 1 << 30;

    internal static void EnsureLittleEndianHost()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("BertSharp checkpoints are little-endian; this machine is big-endian.");
    }

    /// <summary>Product of <paramref name="shape"/>, or null when it overflows a signed 64-bit count.</summary>
    internal static long? CheckedNumel(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) return null;
            try { n = checked(n * d); }
            catch (OverflowException) { return null; }
        }
        return n;
    }

    /// <summary>Fills the contiguous CPU tensor <paramref name="t"/> with exactly its byte size from
    /// <paramref name="stream"/> (throws <see cref="EndOfStreamException"/> if the stream ends first).</summary>
    internal static void ReadInto(Stream stream, torch.Tensor t, int chunkBytes = DefaultChunkBytes)
    {
        long nbytes = t.NumberOfElements * t.ElementSize;
        if (nbytes == 0) return;
        if (nbytes <= chunkBytes)
        {
            stream.ReadExactly(t.bytes);
            return;
        }
        ForEachChunk(t, chunkBytes, part => stream.ReadExactly(part.bytes));
    }

    /// <summary>Writes the bytes of the contiguous CPU tensor <paramref name="t"/> to <paramref name="stream"/>.</summary>
    internal static void WriteFrom(Stream stream, torch.Tensor t, int chunkBytes = DefaultChunkBytes)
    {
        long nbytes = t.NumberOfElements * t.ElementSize;
        if (nbytes == 0) return;
        if (nbytes <= chunkBytes)
        {
            stream.Write(t.bytes);
            return;
        }
        ForEachChunk(t, chunkBytes, part => stream.Write(part.bytes));
    }

    private static void ForEachChunk(torch.Tensor t, int chunkBytes, Action<torch.Tensor> action)
    {
        long elem = t.ElementSize;
        long perChunk = Math.Max(1, chunkBytes / elem);
        long n = t.NumberOfElements;
        using var flat = t.view(-1L);
        for (long start = 0; start < n; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, n - start));
            action(part);
        }
    }

    /// <summary>Index and value of the first byte that is neither 0 nor 1 in a bool tensor; index -1 if none.</summary>
    internal static (long Index, byte Value) FirstInvalidBool(torch.Tensor t, int chunkBytes = DefaultChunkBytes)
    {
        long n = t.NumberOfElements;
        (long, byte) found = (-1, 0);
        if (n == 0) return found;
        long offset = 0;
        void Check(torch.Tensor part)
        {
            if (found.Item1 >= 0) return;
            var span = part.bytes;
            for (int i = 0; i < span.Length; i++)
            {
                if (span[i] > 1) { found = (offset + i, span[i]); return; }
            }
            offset += span.Length;
        }
        if (n <= chunkBytes) Check(t);
        else ForEachChunk(t, chunkBytes, Check);
        return found;
    }

    /// <summary>The zip CRC-32 of a contiguous CPU tensor's bytes.</summary>
    internal static uint Crc32(torch.Tensor t, int chunkBytes = DefaultChunkBytes)
    {
        long nbytes = t.NumberOfElements * t.ElementSize;
        if (nbytes == 0) return 0;
        if (nbytes <= chunkBytes) return ZipCrc32.Append(0, t.bytes);
        uint crc = 0;
        ForEachChunk(t, chunkBytes, part => crc = ZipCrc32.Append(crc, part.bytes));
        return crc;
    }

    /// <summary>One line, for embedding an exception's message in ours.</summary>
    internal static string OneLine(string message) =>
        message.ReplaceLineEndings(" ").Trim();
}
