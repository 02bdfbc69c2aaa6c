using System.Runtime.InteropServices;
using BertSharp.Checkpoints;

namespace BertSharp;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new one, never a partial file:
/// the data goes to a temporary file in the same folder, is flushed to disk, and is then renamed over the
/// target (an atomic replace on the same file system); the folder is then flushed too, so the rename itself
/// survives a power cut (on Linux and macOS; Windows journals it).
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
            FlushFolderToDisk(dir);
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

    /// <summary>Flushes a file written by other means (a library's own writer) to disk: its data survives a
    /// power cut once this returns.</summary>
    public static void FlushFileToDisk(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Flushes a folder's entries (created, renamed, deleted files) to disk, best effort: a rename is
    /// durable only once its folder is. A no-op on Windows and where the platform refuses it.</summary>
    public static void FlushFolderToDisk(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        try
        {
            int fd = Native.open(dir, 0 /* O_RDONLY */);
            if (fd < 0) return;
            Native.fsync(fd);
            Native.close(fd);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { /* not a libc platform */ }
    }

    static class Native
    {
        [DllImport("libc", SetLastError = true)]
        internal static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
        [DllImport("libc", SetLastError = true)]
        internal static extern int fsync(int fd);
        [DllImport("libc", SetLastError = true)]
        internal static extern int close(int fd);
    }
}
