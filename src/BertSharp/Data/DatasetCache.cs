using System.Net;
using System.Security.Cryptography;

namespace BertSharp.Data;

/// <summary>
/// Where datasets live, and the download plumbing the per-dataset classes (<see cref="WikiText2"/>) share.
/// The data folder is the <c>--data-dir</c> option, else the environment variable <c>BERTSHARP_DATA_DIR</c>,
/// else <c>~/.cache/bertsharp/datasets</c>; each dataset has a sub-folder named as its official archive
/// names it (<c>wikitext-2/</c>).
/// </summary>
public static class DatasetCache
{
    /// <summary>The environment variable that overrides the default data folder.</summary>
    public const string DataDirEnvVar = "BERTSHARP_DATA_DIR";

    /// <summary><c>~/.cache/bertsharp/datasets</c>.</summary>
    public static string DefaultDataDir =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "bertsharp", "datasets");

    /// <summary>The data folder: <paramref name="dataDirOption"/> (the <c>--data-dir</c> option) when given, else
    /// <c>BERTSHARP_DATA_DIR</c> when set, else <see cref="DefaultDataDir"/>. Returned as a full path; it need
    /// not exist.</summary>
    public static string ResolveDataDir(string? dataDirOption = null) => ResolveDataDir(dataDirOption, Environment.GetEnvironmentVariable);

    internal static string ResolveDataDir(string? dataDirOption, Func<string, string?> getEnv)
    {
        if (!string.IsNullOrWhiteSpace(dataDirOption)) return Path.GetFullPath(dataDirOption);
        string? env = getEnv(DataDirEnvVar);
        if (!string.IsNullOrWhiteSpace(env)) return Path.GetFullPath(env);
        return DefaultDataDir;
    }

    /// <summary>The path of <paramref name="fileName"/> or <paramref name="fileName"/><c>.gz</c> in
    /// <paramref name="folder"/> (the plain file wins when both exist), or null.</summary>
    public static string? FindFile(string folder, string fileName)
    {
        string plain = Path.Combine(folder, fileName);
        if (File.Exists(plain)) return plain;
        string gz = plain + ".gz";
        return File.Exists(gz) ? gz : null;
    }

    /// <summary>SHA-256 (lower-case hex) of a file's content, decompressed first if its name ends in
    /// <c>.gz</c>, so a gzipped copy checks against the published checksum of the plain file.</summary>
    public static string ComputeSha256(string path)
    {
        using var file = TextLineReader.OpenFile(path);
        Stream stream = file;
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
            stream = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress);
        using (stream)
        {
            try
            {
                return Convert.ToHexStringLower(SHA256.HashData(stream));
            }
            catch (InvalidDataException e)
            {
                throw new BertSharpException($"{path}: corrupt compressed data: {TextLineReader.OneLine(e.Message)}", e);
            }
        }
    }

    /// <summary>A shared client: no overall timeout (downloads can be long), a 30 s connect timeout.</summary>
    internal static HttpClient SharedHttpClient => s_client.Value;

    static readonly Lazy<HttpClient> s_client = new(() =>
    {
        var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(30),
            AutomaticDecompression = DecompressionMethods.None,
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd("BertSharp/0.1 (+dataset download)");
        return client;
    });

    /// <summary>Downloads <paramref name="url"/> into <paramref name="destination"/> (created or overwritten),
    /// reporting bytes received. Throws <see cref="DownloadException"/> with a short one-line reason on an HTTP
    /// error status, a network failure, or a stall of <paramref name="stallTimeout"/> (default 60 s) without data.</summary>
    internal static async Task DownloadAsync(HttpClient client, string url, string destination,
        IProgress<DownloadProgress>? progress, TimeSpan? stallTimeout, CancellationToken cancellationToken)
    {
        var stall = stallTimeout ?? TimeSpan.FromSeconds(60);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            timeout.CancelAfter(stall);
            using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw new DownloadException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}".TrimEnd());
            long? total = response.Content.Headers.ContentLength;
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            await using var file = new FileStream(destination, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            var buffer = new byte[1 << 16];
            long received = 0;
            progress?.Report(new DownloadProgress(url, 0, total, false));
            while (true)
            {
                timeout.CancelAfter(stall);
                int n = await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
                if (n == 0) break;
                await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                received += n;
                progress?.Report(new DownloadProgress(url, received, total, false));
            }
            if (total is { } t && received != t)
                throw new DownloadException($"connection closed after {received:N0} of {t:N0} bytes");
            progress?.Report(new DownloadProgress(url, received, total, true));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DownloadException($"no data for {stall.TotalSeconds:0} s (timed out)");
        }
        catch (HttpRequestException e)
        {
            throw new DownloadException(TextLineReader.OneLine(e.Message), e);
        }
        catch (IOException e) when (e is not DownloadException)
        {
            throw new DownloadException(TextLineReader.OneLine(e.Message), e);
        }
    }

    /// <summary>Deletes a file, ignoring failure (temp-file cleanup).</summary>
    internal static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A download failed; the message is a short one-line reason (no URL).</summary>
internal sealed class DownloadException : IOException
{
    public DownloadException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>Progress of one download: bytes received so far, and the total when the server said.</summary>
public readonly record struct DownloadProgress(string Url, long BytesReceived, long? TotalBytes, bool Completed)
{
    /// <summary>0–100, or null when the total is unknown.</summary>
    public double? Percent => TotalBytes is > 0 and var t ? 100.0 * BytesReceived / t : null;
}

/// <summary>A one-line console progress bar for downloads (<c>\r</c>-redrawn, at most ~10 times a second),
/// e.g. <c>wikitext-2-v1.zip [#########-----------]  45.0%  2.0 / 4.5 MB  3.1 MB/s</c> (the speed once a download
/// has run half a second). Without a label, each download is labelled with its URL's file name.</summary>
public sealed class DownloadProgressBar : IProgress<DownloadProgress>
{
    readonly TextWriter _writer;
    readonly string? _label;
    long _lastTicks;
    int _lastWidth;
    string? _url;
    long _startTicks, _startBytes;

    public DownloadProgressBar(TextWriter? writer = null, string? label = null)
    {
        _writer = writer ?? Console.Error;
        _label = label;
    }

    public void Report(DownloadProgress value)
    {
        long now = Environment.TickCount64;
        if (value.Url != _url)
        {
            // A new download: its speed counts from here (a resumed one's bytes already there excluded).
            _url = value.Url;
            _startTicks = now;
            _startBytes = value.BytesReceived;
        }
        if (!value.Completed && value.BytesReceived > 0 && now - _lastTicks < 100) return;
        _lastTicks = now;
        double seconds = (now - _startTicks) / 1000.0;
        double? speed = seconds >= 0.5 ? (value.BytesReceived - _startBytes) / seconds : null;
        string line = Format(_label ?? LabelOf(value.Url), value, speed);
        _writer.Write("\r" + line.PadRight(_lastWidth));
        _lastWidth = line.Length;
        if (value.Completed)
        {
            _writer.WriteLine();
            _url = null;
            _lastWidth = 0;
        }
        _writer.Flush();
    }

    /// <summary>The last segment of a URL's path ("download" when it has none).</summary>
    static string LabelOf(string url)
    {
        string path = Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.AbsolutePath : url;
        string name = Uri.UnescapeDataString(path.TrimEnd('/').Split('/')[^1]);
        return name.Length > 0 ? name : "download";
    }

    /// <summary>The bar's text for one progress value, with the speed in bytes per second when known.</summary>
    public static string Format(string label, DownloadProgress p, double? bytesPerSecond = null)
    {
        static string Mb(double bytes) => (bytes / 1e6).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
        string speed = bytesPerSecond is { } bps ? $"  {Mb(bps)} MB/s" : "";
        if (p.Percent is { } pct)
        {
            const int width = 20;
            int filled = (int)Math.Clamp(Math.Round(pct / 100 * width), 0, width);
            return string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{label} [{new string('#', filled)}{new string('-', width - filled)}] {pct,5:0.0}%  {Mb(p.BytesReceived)} / {Mb(p.TotalBytes!.Value)} MB{speed}");
        }
        return $"{label} {Mb(p.BytesReceived)} MB{speed}";
    }
}
