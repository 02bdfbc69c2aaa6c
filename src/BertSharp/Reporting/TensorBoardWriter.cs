using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace BertSharp.Reporting;

/// <summary>
/// Writes scalars to a TensorBoard event file <c>events.out.tfevents.&lt;seconds&gt;.&lt;host&gt;.&lt;pid&gt;.&lt;n&gt;</c>
/// in a folder; every event is flushed as it is written.
/// </summary>
/// <remarks>
/// Written here rather than with TorchSharp's <c>torch.utils.tensorboard.SummaryWriter</c> (0.107), which
/// stores <c>DateTime.Now.Ticks</c> or 0 as the event wall time (TensorBoard expects Unix seconds), takes
/// int steps and float values only, reopens the file for every event, and needs the native libtorch just
/// to compute CRCs. The format is small: TFRecord framing (u64 length, masked CRC32C of the length, the
/// bytes, masked CRC32C of the bytes) around <c>tensorflow.Event</c> protobufs, the first one carrying
/// file_version "brain.Event:2".
/// </remarks>
public sealed class TensorBoardWriter : IDisposable
{
    static int s_fileCounter;
    readonly FileStream _stream;
    readonly MemoryStream _event = new();
    readonly MemoryStream _scratch = new();

    /// <param name="logDirectory">Folder for the events file (created if missing).</param>
    /// <param name="purgeStep">
    /// When a run resumes at step S, pass S + 1: the file then starts with a SessionLog START event at that step,
    /// which tells TensorBoard to hide events with step ≥ S + 1 from the earlier files (the steps that
    /// the crashed run logged after its last checkpoint), as PyTorch's <c>SummaryWriter(purge_step=)</c> does.
    /// </param>
    public TensorBoardWriter(string logDirectory, long? purgeStep = null)
    {
        Directory.CreateDirectory(logDirectory);
        long seconds = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string host = SafeHostName();
        int pid = Environment.ProcessId;
        string path;
        do
        {
            int n = Interlocked.Increment(ref s_fileCounter);
            path = Path.Combine(logDirectory, $"events.out.tfevents.{seconds}.{host}.{pid}.{n}");
        } while (File.Exists(path));
        FilePath = path;
        _stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);

        double now = WallTime(DateTimeOffset.UtcNow);
        BeginEvent(now, purgeStep ?? 0);
        WriteTag(3, 2); WriteBytes(Encoding.UTF8.GetBytes("brain.Event:2"));        // file_version = 3
        EndEvent();
        if (purgeStep is long s)
        {
            BeginEvent(now, s);
            // session_log = 7 { status = 1 (START) }
            WriteTag(7, 2); WriteVarint(2); WriteTag(1, 0); WriteVarint(1);
            EndEvent();
        }
        _stream.Flush();
    }

    /// <summary>The events file this writer appends to.</summary>
    public string FilePath { get; }

    /// <summary>Writes one event at <paramref name="step"/> holding the given scalars (simple_value, float32), and flushes.</summary>
    public void AddScalars(long step, IEnumerable<KeyValuePair<string, double>> scalars, DateTimeOffset? wallTime = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        BeginEvent(WallTime(wallTime ?? DateTimeOffset.UtcNow), step);
        _scratch.SetLength(0);
        Span<byte> f = stackalloc byte[4];
        foreach (var (tag, value) in scalars)
        {
            // Summary.value = 1 { tag = 1, simple_value = 2 }
            byte[] tagBytes = Encoding.UTF8.GetBytes(tag);
            int valueLength = 1 + VarintLength((ulong)tagBytes.Length) + tagBytes.Length + 1 + 4;
            WriteTag(_scratch, 1, 2); WriteVarint(_scratch, (ulong)valueLength);
            WriteTag(_scratch, 1, 2); WriteVarint(_scratch, (ulong)tagBytes.Length); _scratch.Write(tagBytes);
            WriteTag(_scratch, 2, 5);
            BinaryPrimitives.WriteSingleLittleEndian(f, (float)value);
            _scratch.Write(f);
        }
        WriteTag(5, 2); WriteBytes(_scratch.GetBuffer().AsSpan(0, (int)_scratch.Length));   // summary = 5
        EndEvent();
        _stream.Flush();
    }

    /// <summary>Writes one scalar at <paramref name="step"/>.</summary>
    public void AddScalar(string tag, double value, long step, DateTimeOffset? wallTime = null) =>
        AddScalars(step, [new KeyValuePair<string, double>(tag, value)], wallTime);

    bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stream.Dispose();
    }

    // ---- Event framing ----

    void BeginEvent(double wallTime, long step)
    {
        _event.SetLength(0);
        WriteTag(1, 1);                                                              // wall_time = 1 (double)
        Span<byte> d = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(d, wallTime);
        _event.Write(d);
        if (step != 0) { WriteTag(2, 0); WriteVarint(unchecked((ulong)step)); }      // step = 2 (int64)
    }

    void EndEvent()
    {
        var data = _event.GetBuffer().AsSpan(0, (int)_event.Length);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc32C(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc32C(data));
        _stream.Write(header);
        _stream.Write(data);
        _stream.Write(footer);
    }

    void WriteTag(int field, int wireType) => WriteTag(_event, field, wireType);
    void WriteVarint(ulong v) => WriteVarint(_event, v);
    void WriteBytes(ReadOnlySpan<byte> bytes) { WriteVarint((ulong)bytes.Length); _event.Write(bytes); }

    static void WriteTag(Stream s, int field, int wireType) => WriteVarint(s, (ulong)((field << 3) | wireType));

    static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    static int VarintLength(ulong v) { int n = 1; while (v >= 0x80) { v >>= 7; n++; } return n; }

    static double WallTime(DateTimeOffset t) => t.ToUnixTimeMilliseconds() / 1000.0;

    static string SafeHostName()
    {
        string host;
        try { host = Environment.MachineName; } catch { host = "localhost"; }
        var sb = new StringBuilder(host.Length);
        foreach (char c in host) sb.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_');
        return sb.Length > 0 ? sb.ToString() : "localhost";
    }

    // ---- CRC32C (Castagnoli), masked as TFRecord does ----

    /// <summary>CRC32C of <paramref name="data"/> (hardware-accelerated where available).</summary>
    internal static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>TFRecord's masked CRC: rotate right by 15 and add 0xa282ead8.</summary>
    internal static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }
}
