// MSBuild inline task (RoslynCodeTaskFactory). TorchSharp 0.107's libLibTorchSharp.so was linked with GCC 13,
// whose <iostream> adds a reference to std::ios_base_library_init() versioned GLIBCXX_3.4.32. It is only a
// link-time marker (no relocation uses it), but the loader refuses the library on systems whose libstdc++
// stops at GLIBCXX_3.4.30 (Debian 12). Marking that one version need weak (VER_FLG_WEAK) lets it load.
// Applied to copies in the build output only, and only when the system libstdc++ lacks the version.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenGlibcxxRequirement : Task
{
    const string Version = "GLIBCXX_3.4.32";
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    [Required] public string Directory { get; set; } = "";

    public override bool Execute()
    {
        if (!System.IO.Directory.Exists(Directory)) return true;
        if (SystemLibstdcxxHasVersion()) return true;
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories))
        {
            try
            {
                if (Patch(path)) Log.LogMessage(MessageImportance.High, $"BertSharp: marked {Version} weak in {path} (system libstdc++ lacks it)");
            }
            catch (Exception e)
            {
                Log.LogWarning($"BertSharp: could not patch {path}: {e.Message}");
            }
        }
        return true;
    }

    static bool SystemLibstdcxxHasVersion()
    {
        string[] dirs = { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib" };
        bool found = false;
        foreach (var d in dirs)
        {
            var lib = Path.Combine(d, "libstdc++.so.6");
            if (!File.Exists(lib)) continue;
            found = true;
            var bytes = File.ReadAllBytes(lib);
            if (IndexOf(bytes, Encoding.ASCII.GetBytes(Version + "\0")) >= 0) return true;
        }
        return !found; // no libstdc++ found where we look: leave the library alone
    }

    static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    /// <summary>Sets VER_FLG_WEAK on the GLIBCXX_3.4.32 entry of .gnu.version_r. Returns true if it changed the file.</summary>
    static bool Patch(string path)
    {
        var b = File.ReadAllBytes(path);
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F') return false;
        if (b[4] != 2 || b[5] != 1) return false; // ELF64 little-endian only
        ulong shoff = BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A), shnum = BitConverter.ToUInt16(b, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            int sh = checked((int)shoff + s * shentsize);
            if (BitConverter.ToUInt32(b, sh + 4) != ShtGnuVerneed) continue;
            long off = (long)BitConverter.ToUInt64(b, sh + 0x18);
            int link = (int)BitConverter.ToUInt32(b, sh + 0x28), count = (int)BitConverter.ToUInt32(b, sh + 0x2C);
            long strOff = (long)BitConverter.ToUInt64(b, checked((int)shoff + link * shentsize) + 0x18);
            long need = off;
            for (int n = 0; n < count; n++)
            {
                int cnt = BitConverter.ToUInt16(b, (int)need + 2);
                long aux = need + BitConverter.ToUInt32(b, (int)need + 8);
                for (int a = 0; a < cnt; a++)
                {
                    uint nameOff = BitConverter.ToUInt32(b, (int)aux + 8);
                    if (ReadCString(b, strOff + nameOff) == Version)
                    {
                        ushort flags = BitConverter.ToUInt16(b, (int)aux + 4);
                        if ((flags & VerFlgWeak) != 0) return false;
                        flags |= VerFlgWeak;
                        b[aux + 4] = (byte)flags; b[aux + 5] = (byte)(flags >> 8);
                        var tmp = path + ".tmp";
                        File.WriteAllBytes(tmp, b);
                        File.Copy(tmp, path, true);
                        File.Delete(tmp);
                        return true;
                    }
                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }
                need += BitConverter.ToUInt32(b, (int)need + 12);
            }
        }
        return false;
    }

    static string ReadCString(byte[] b, long at)
    {
        int end = (int)at;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
    }
}
