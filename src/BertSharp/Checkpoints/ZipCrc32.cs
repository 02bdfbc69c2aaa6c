namespace BertSharp.Checkpoints;

/// <summary>The CRC-32 of zip entries (IEEE 802.3, reflected polynomial 0xEDB88320), slicing-by-8.
/// <see cref="System.IO.Compression.ZipArchive"/> does not check it when reading stored entries.</summary>
internal static class ZipCrc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        for (int i = 0; i < 256; i++)
        {
            for (int s = 1; s < 8; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i] >> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
        }
        return t;
    }

    /// <summary>Continues a CRC: start with <c>Append(0, ...)</c> and feed the data in order.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        var t = Table;
        uint c = ~crc;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            uint a = c ^ (uint)(data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24);
            uint b = (uint)(data[i + 4] | data[i + 5] << 8 | data[i + 6] << 16 | data[i + 7] << 24);
            c = t[7 * 256 + (a & 0xff)] ^ t[6 * 256 + ((a >> 8) & 0xff)] ^ t[5 * 256 + ((a >> 16) & 0xff)] ^ t[4 * 256 + (a >> 24)]
              ^ t[3 * 256 + (b & 0xff)] ^ t[2 * 256 + ((b >> 8) & 0xff)] ^ t[1 * 256 + ((b >> 16) & 0xff)] ^ t[b >> 24];
        }
        for (; i < data.Length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >> 8);
        return ~c;
    }
}
