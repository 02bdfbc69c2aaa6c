using System.Buffers.Binary;
using System.Text;

namespace BertSharp.Tests.Reporting;

/// <summary>
/// An independent reader of TensorBoard event files for the tests: TFRecord framing with both CRCs checked
/// (CRC32C computed bitwise here, not with the writer's code) and the few Event fields we write.
/// </summary>
internal static class TfEventsReader
{
    public sealed record Event(double WallTime, long Step, string? FileVersion, int? SessionLogStatus, List<(string Tag, float Value)> Scalars);

    public static List<Event> Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var events = new List<Event>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            Assert.True(bytes.Length - pos >= 12, $"truncated record header at {pos}");
            var header = bytes.AsSpan(pos, 8);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header);
            Assert.Equal(MaskedCrc(header), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 8, 4)));
            pos += 12;
            Assert.True((ulong)(bytes.Length - pos) >= length + 4, $"truncated record at {pos}");
            var data = bytes.AsSpan(pos, (int)length);
            Assert.Equal(MaskedCrc(data), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + (int)length, 4)));
            events.Add(ParseEvent(data.ToArray()));
            pos += (int)length + 4;
        }
        return events;
    }

    static Event ParseEvent(byte[] data)
    {
        double wallTime = 0; long step = 0; string? version = null; int? status = null;
        var scalars = new List<(string, float)>();
        foreach (var (field, wire, value, bytes) in Fields(data))
        {
            switch (field)
            {
                case 1: Assert.Equal(1, wire); wallTime = BitConverter.Int64BitsToDouble((long)value); break;
                case 2: Assert.Equal(0, wire); step = (long)value; break;
                case 3: Assert.Equal(2, wire); version = Encoding.UTF8.GetString(bytes!); break;
                case 5:
                    Assert.Equal(2, wire);
                    foreach (var (f, w, _, valueBytes) in Fields(bytes!))
                    {
                        Assert.Equal((1, 2), (f, w));
                        string? tag = null; float? simple = null;
                        foreach (var (vf, vw, vv, vb) in Fields(valueBytes!))
                        {
                            if (vf == 1) { Assert.Equal(2, vw); tag = Encoding.UTF8.GetString(vb!); }
                            if (vf == 2) { Assert.Equal(5, vw); simple = BitConverter.Int32BitsToSingle((int)vv); }
                        }
                        Assert.NotNull(tag); Assert.NotNull(simple);
                        scalars.Add((tag!, simple!.Value));
                    }
                    break;
                case 7:
                    Assert.Equal(2, wire);
                    foreach (var (f, w, v, _) in Fields(bytes!)) if (f == 1 && w == 0) status = (int)v;
                    break;
                default: Assert.Fail($"unexpected Event field {field}"); break;
            }
        }
        return new Event(wallTime, step, version, status, scalars);
    }

    static IEnumerable<(int Field, int Wire, ulong Value, byte[]? Bytes)> Fields(byte[] data)
    {
        int pos = 0;
        while (pos < data.Length)
        {
            ulong key = Varint(data, ref pos);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, wire, Varint(data, ref pos), null); break;
                case 1: yield return (field, wire, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(pos, 8)), null); pos += 8; break;
                case 5: yield return (field, wire, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(pos, 4)), null); pos += 4; break;
                case 2:
                    int len = (int)Varint(data, ref pos);
                    yield return (field, wire, 0, data.AsSpan(pos, len).ToArray());
                    pos += len;
                    break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }
    }

    static ulong Varint(byte[] data, ref int pos)
    {
        ulong v = 0; int shift = 0;
        while (true)
        {
            byte b = data[pos++];
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return v;
            shift += 7;
        }
    }

    /// <summary>Bitwise CRC32C (reflected polynomial 0x82F63B78).</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }

    static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }
}
