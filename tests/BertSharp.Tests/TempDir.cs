using System.IO.Compression;
using System.Text;

namespace BertSharp.Tests;

/// <summary>A fresh folder under this test run's scratch root (<see cref="TestPaths.RunRoot"/>), deleted on dispose,
/// with helpers to write test inputs.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = TestPaths.TempDir("dir");

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, string text) => WriteBytes(name, Encoding.UTF8.GetBytes(text));

    /// <summary>Writes the bytes to <paramref name="name"/> (gzipped when it ends in .gz); returns the path.</summary>
    public string WriteBytes(string name, byte[] bytes)
    {
        string path = File(name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        if (name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            using var f = System.IO.File.Create(path);
            using var gz = new GZipStream(f, CompressionLevel.Fastest);
            gz.Write(bytes);
        }
        else System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
