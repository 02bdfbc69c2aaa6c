using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using BertSharp.Data;

namespace BertSharp.Hub;

/// <summary>What a HEAD on a resolve URL says about a file: the commit the revision is at, the file's ETag
/// (normalized: the blob's name in the cache), its size, and where to GET it (a CDN URL for LFS files).</summary>
internal sealed record HubFileMetadata(string Commit, string Etag, long Size, string DownloadUrl);

/// <summary>Why a request to the Hub failed, in the Hub's own terms (its X-Error-Code header where it sends one).</summary>
internal enum HubFailure { RepoNotFound, RevisionNotFound, EntryNotFound, Gated, Unauthorized, InvalidToken, Server, Network, NotAHub, Interrupted }

/// <summary>A failed Hub request: the kind, the HTTP status if any, and a short one-line reason (no URL).
/// <see cref="ModelSource"/> turns it into a message that names the model and what to do.</summary>
internal sealed class HubRequestException(HubFailure kind, string reason, int? status = null, string? commit = null, Exception? inner = null)
    : Exception(reason, inner)
{
    public HubFailure Kind { get; } = kind;
    public int? Status { get; } = status;
    /// <summary>For a missing file: the commit the Hub looked in (X-Repo-Commit), for the .no_exist marker.</summary>
    public string? Commit { get; } = commit;
}

/// <summary>
/// The Hub's HTTP protocol as huggingface_hub speaks it: HEAD <c>{endpoint}/{repo}/resolve/{revision}/{file}</c>
/// without following redirects (X-Repo-Commit, X-Linked-Etag else ETag, X-Linked-Size else Content-Length, the
/// Location of an LFS file's CDN copy), then GET of the file, resuming with Range requests, the token sent only to
/// the endpoint's host.
/// </summary>
internal sealed class HubHttp(HubOptions options)
{
    static readonly Lazy<HttpClient> s_client = new(() =>
    {
        var client = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,   // redirects are followed by hand: the token must not follow one to a CDN
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd($"BertSharp/{typeof(HubHttp).Assembly.GetName().Version?.ToString(3) ?? "0"}");
        client.DefaultRequestHeaders.UserAgent.ParseAdd($"dotnet/{Environment.Version}");
        return client;
    });

    static HttpClient Client => s_client.Value;

    /// <summary>huggingface_hub's wait for a HEAD (its DEFAULT_ETAG_TIMEOUT).</summary>
    static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(10);

    public string ResolveUrl(string repoId, string revision, string file) =>
        $"{options.Endpoint}/{repoId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}";

    HttpRequestMessage Request(HttpMethod method, string url)
    {
        var request = new HttpRequestMessage(method, url);
        // The token goes to the Hub's own host only; a CDN URL is signed (huggingface_hub drops it there too).
        if (options.Token is { } token && SameHost(url, options.Endpoint))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));   // the real size, not a gzipped one
        return request;
    }

    static bool SameHost(string a, string b) =>
        Uri.TryCreate(a, UriKind.Absolute, out var ua) && Uri.TryCreate(b, UriKind.Absolute, out var ub)
        && string.Equals(ua.Authority, ub.Authority, StringComparison.OrdinalIgnoreCase);

    /// <summary>HEAD on a file's resolve URL. Relative redirects (a renamed repository) are followed, an absolute one
    /// (an LFS file's CDN copy) is not: its Location is where the file is downloaded from.</summary>
    public async Task<HubFileMetadata> HeadAsync(string repoId, string revision, string file, CancellationToken cancellationToken)
    {
        string url = ResolveUrl(repoId, revision, file);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HeadTimeout);
        try
        {
            for (int hop = 0; hop < 10; hop++)
            {
                using var response = await Client.SendAsync(Request(HttpMethod.Head, url), HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                int status = (int)response.StatusCode;
                var location = response.Headers.Location;
                if (status is >= 300 and < 400 && location is not null && !location.IsAbsoluteUri)
                {
                    url = new Uri(new Uri(url), location).ToString();
                    continue;
                }
                if (status >= 400) throw Failure(response);
                string? commit = Header(response, "X-Repo-Commit");
                string? etag = NormalizeEtag(Header(response, "X-Linked-Etag") ?? Header(response, "ETag"));
                bool redirect = status is >= 300 and < 400;
                long? size = long.TryParse(Header(response, "X-Linked-Size"), out var linked) ? linked
                    : redirect ? null : response.Content.Headers.ContentLength;
                if (commit is null || etag is null || size is null)
                    throw new HubRequestException(HubFailure.NotAHub,
                        $"the answer has no {(commit is null ? "X-Repo-Commit" : etag is null ? "ETag" : "size")} header: the endpoint does not answer like the Hub (a proxy or a firewall in between?)", status);
                return new HubFileMetadata(commit, etag, size.Value, redirect && location is not null ? location.ToString() : url);
            }
            throw new HubRequestException(HubFailure.NotAHub, "too many redirects");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HubRequestException(HubFailure.Network, $"no answer within {HeadTimeout.TotalSeconds:0} s");
        }
        catch (HttpRequestException e)
        {
            throw new HubRequestException(HubFailure.Network, NetworkReason(e), inner: e);
        }
    }

    /// <summary>
    /// Downloads <paramref name="meta"/>'s file into <paramref name="partPath"/>: continues a partial file left there
    /// with a Range request, and resumes the same way when the connection breaks, up to
    /// <see cref="HubOptions.ResumeRetries"/> times in a row without new data; then checks the size and the content
    /// against the ETag. On a checksum mismatch the partial file is deleted.
    /// </summary>
    public async Task DownloadAsync(HubFileMetadata meta, string partPath, string displayUrl, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        await using (var file = new FileStream(partPath, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            long have = file.Length;
            if (have > meta.Size) { file.SetLength(0); have = 0; }
            file.Seek(have, SeekOrigin.Begin);
            int failures = 0;
            progress?.Report(new DownloadProgress(displayUrl, have, meta.Size, false));
            while (have < meta.Size)
            {
                long before = have;
                try
                {
                    have = await ReceiveAsync(meta, file, have, displayUrl, progress, cancellationToken).ConfigureAwait(false);
                    if (have < meta.Size) throw new HubRequestException(HubFailure.Interrupted, $"the connection closed after {have:N0} of {meta.Size:N0} bytes");
                }
                catch (HubRequestException e) when (e.Kind is HubFailure.Interrupted or HubFailure.Network)
                {
                    // As huggingface_hub: any data received resets the count of attempts left.
                    bool progressed = file.Position > LastStart(e, before);
                    have = file.Position;
                    failures = progressed ? 1 : failures + 1;
                    if (failures > options.ResumeRetries) throw;
                    await Task.Delay(options.RetryDelay, cancellationToken).ConfigureAwait(false);
                }
            }
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }
        progress?.Report(new DownloadProgress(displayUrl, meta.Size, meta.Size, true));
        if (Verify(partPath, meta) is { } mismatch)
        {
            DatasetCache.TryDelete(partPath);
            throw new ChecksumMismatchException(mismatch);
        }
    }

    /// <summary>Where the failed attempt started (a reply that ignored Range restarts at 0).</summary>
    static long LastStart(HubRequestException e, long have) => e.Data["start"] is long start ? start : have;

    /// <summary>One GET from <paramref name="have"/> on; returns the bytes the file holds afterwards.</summary>
    async Task<long> ReceiveAsync(HubFileMetadata meta, FileStream file, long have, string displayUrl, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        long start = have;
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            string url = meta.DownloadUrl;
            HttpResponseMessage response;
            for (int hop = 0; ; hop++)
            {
                var request = Request(HttpMethod.Get, url);
                if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
                stall.CancelAfter(options.StallTimeout);
                response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stall.Token).ConfigureAwait(false);
                if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } next && hop < 10)
                {
                    url = new Uri(new Uri(url), next).ToString();
                    response.Dispose();
                    continue;
                }
                break;
            }
            using (response)
            {
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                {
                    // The partial file does not fit the server's copy: start again from the first byte.
                    file.SetLength(0);
                    file.Seek(0, SeekOrigin.Begin);
                    return 0;
                }
                if ((int)response.StatusCode >= 400) throw Failure(response);
                if (response.StatusCode == HttpStatusCode.OK && have > 0)
                {
                    // The server ignored the Range header and sends the whole file (huggingface_hub resets the same way).
                    file.SetLength(0);
                    file.Seek(0, SeekOrigin.Begin);
                    have = start = 0;
                }
                else if (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From is { } from && from != have)
                    throw new HubRequestException(HubFailure.NotAHub, $"asked for bytes from {have:N0}, got a range from {from:N0}");
                await using var body = await response.Content.ReadAsStreamAsync(stall.Token).ConfigureAwait(false);
                var buffer = new byte[1 << 16];
                while (true)
                {
                    stall.CancelAfter(options.StallTimeout);
                    int n = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
                    if (n == 0) break;
                    if (have + n > meta.Size) throw new HubRequestException(HubFailure.NotAHub, $"the server sent more than the {meta.Size:N0} bytes the Hub announced");
                    await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    have += n;
                    progress?.Report(new DownloadProgress(displayUrl, have, meta.Size, false));
                }
                return have;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Interrupted($"no data for {options.StallTimeout.TotalSeconds:0} s", start, null);
        }
        catch (HttpRequestException e)
        {
            throw Interrupted(NetworkReason(e), start, e);
        }
        catch (IOException e) when (e.InnerException is SocketException || e is HttpIOException)
        {
            throw Interrupted(TextLineReader.OneLine(e.Message), start, e);
        }
    }

    static HubRequestException Interrupted(string reason, long start, Exception? inner)
    {
        var e = new HubRequestException(HubFailure.Interrupted, reason, inner: inner);
        e.Data["start"] = start;
        return e;
    }

    /// <summary>The content check an ETag allows: a 64-hex ETag is an LFS file's sha256; a 40-hex one a git blob's
    /// sha1 (of "blob {size}\0" + content); anything else only the size. Null when it matches, else the mismatch.</summary>
    internal static string? Verify(string path, HubFileMetadata meta)
    {
        long length = new FileInfo(path).Length;
        if (length != meta.Size) return $"size {length:N0} bytes, expected {meta.Size:N0}";
        string etag = meta.Etag;
        if (etag.Length == 64 && etag.All(char.IsAsciiHexDigit))
        {
            using var stream = File.OpenRead(path);
            string sha = Convert.ToHexStringLower(SHA256.HashData(stream));
            return sha == etag.ToLowerInvariant() ? null : $"sha256 {sha}, expected {etag}";
        }
        if (etag.Length == 40 && etag.All(char.IsAsciiHexDigit))
        {
            using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            sha1.AppendData(System.Text.Encoding.ASCII.GetBytes($"blob {length}\0"));
            using var stream = File.OpenRead(path);
            var buffer = new byte[1 << 16];
            int n;
            while ((n = stream.Read(buffer)) > 0) sha1.AppendData(buffer, 0, n);
            string got = Convert.ToHexStringLower(sha1.GetHashAndReset());
            return got == etag.ToLowerInvariant() ? null : $"git blob sha1 {got}, expected {etag}";
        }
        return null;
    }

    /// <summary>huggingface_hub's _normalize_etag: <c>etag.lstrip("W/").strip('"')</c> (a weak or quoted ETag
    /// names the same blob as the bare value).</summary>
    internal static string? NormalizeEtag(string? etag) => etag?.TrimStart('W', '/').Trim('"') is { Length: > 0 } e ? e : null;

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var v) || response.Content.Headers.TryGetValues(name, out v) ? v.FirstOrDefault() : null;

    /// <summary>An error status in the Hub's terms, as huggingface_hub's hf_raise_for_status reads it.</summary>
    static HubRequestException Failure(HttpResponseMessage response)
    {
        int status = (int)response.StatusCode;
        string? code = Header(response, "X-Error-Code");
        string? message = Header(response, "X-Error-Message");
        string reason = $"HTTP {status}{(message != null ? ": " + TextLineReader.OneLine(message) : "")}";
        var kind = code switch
        {
            "RevisionNotFound" => HubFailure.RevisionNotFound,
            "EntryNotFound" => HubFailure.EntryNotFound,
            "GatedRepo" => HubFailure.Gated,
            "RepoNotFound" => HubFailure.RepoNotFound,
            _ when status == 401 && message == "Invalid credentials in Authorization header" => HubFailure.InvalidToken,
            _ when status is 401 or 403 => HubFailure.Unauthorized,
            _ when status == 404 => HubFailure.EntryNotFound,
            _ => HubFailure.Server,
        };
        return new HubRequestException(kind, reason, status, Header(response, "X-Repo-Commit"));
    }

    static string NetworkReason(HttpRequestException e) =>
        TextLineReader.OneLine(e.InnerException is SocketException s ? s.Message : e.Message);
}

/// <summary>Downloaded bytes that do not match the file's ETag.</summary>
internal sealed class ChecksumMismatchException(string mismatch) : Exception(mismatch);
