using BertSharp.Checkpoints;

namespace BertSharp;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new one, never a partial file:
/// the data goes to a temporary file in the same folder, is flushed to disk, and is then renamed over the
/// target (an atomic replace on the same file system).
/// </summary>
public static class AtomicFile
{
    /// <param name="path">The file to create or replace.</param>
    /// <param name="write">Writes the content to the stream it is given.</param>
    /// <param name="wrapStream">Optional wrapper around the file stream (a test hook).</param>
    /// <exception cref="BertSharpException">Any I/O failure, with a one-line message naming <paramref name="path"/>.
    /// Exceptions other than I/O errors thrown by <paramref name="write"/> pass through unchanged; in every
    /// case the temporary file is removed and the old file is left as it was.</exception>
    public static void Write(string path, Action<Stream> write, Func<Stream, Stream>? wrapStream = null)
    {
        string full;
        try { full = Path.GetFullPath(path); }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new BertSharpException($"{path}: not a valid file path ({TensorBytes.OneLine(ex.Message)})", ex);
        }
        var dir = Path.GetDirectoryName(full) ?? ".";
        if (Directory.Exists(full))
            throw new BertSharpException($"{path}: could not write: it is a folder");
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        bool created = false;
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                created = true;
                var stream = wrapStream?.Invoke(fs) ?? fs;
                write(stream);
                stream.Flush();
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
            created = false;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            string reason = ex switch
            {
                DirectoryNotFoundException => $"the folder {dir} does not exist",
                UnauthorizedAccessException => $"permission denied ({TensorBytes.OneLine(ex.Message)})",
                _ => TensorBytes.OneLine(ex.Message),
            };
            throw new BertSharpException($"{path}: could not write: {reason}", ex);
        }
        finally
        {
            if (created)
            {
                try { File.Delete(temp); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { /* best effort */ }
            }
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var b = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(b, 0, b.Length); });
}
