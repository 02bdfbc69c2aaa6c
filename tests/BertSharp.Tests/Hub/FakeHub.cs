using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace BertSharp.Tests.Hub;

/// <summary>
/// A local HTTP/1.1 server that answers like the Hugging Face Hub's resolve endpoint, for the Hub client's tests
/// (no internet): <c>HEAD/GET /{repo}/resolve/{revision}/{file}</c> with X-Repo-Commit; a git file answers 200
/// with its git blob sha1 as a quoted ETag; an LFS file (by extension, as the Hub's .gitattributes) answers 302 to
/// a CDN URL on another host name (localhost instead of 127.0.0.1) with X-Linked-Etag (its sha256) and
/// X-Linked-Size; the CDN honours Range (206). Errors carry the Hub's X-Error-Code: RepoNotFound (401 without a
/// token, 404 with one), GatedRepo (401 without the token, 403 with another), RevisionNotFound, EntryNotFound.
/// Every request is recorded; faults (a connection cut at a byte offset, corrupted bytes) are injected per file.
/// </summary>
public sealed class FakeHub : IDisposable
{
    public const string Token = "hf_fake_token_with_access";

    readonly Data.LocalHttpServer _server;
    readonly ConcurrentDictionary<string, Repo> _repos = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, string> _aliases = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, byte[]> _lfs = new(StringComparer.Ordinal);
    readonly ConcurrentQueue<Request> _requests = new();

    public FakeHub() => _server = new Data.LocalHttpServer(Respond);

    public int Port => _server.Port;
    public string Endpoint => $"http://127.0.0.1:{Port}";
    /// <summary>The CDN's host: the same server under another name, as the Hub's CDN is another host.</summary>
    public string CdnAuthority => $"localhost:{Port}";

    public sealed record Request(string Method, string Host, string Path, string? Range, string? Authorization)
    {
        public bool ToCdn => Path.StartsWith("/cdn/", StringComparison.Ordinal);
        public string File => Uri.UnescapeDataString(Path.Contains("/resolve/") ? string.Join('/', Path.Split("/resolve/")[1].Split('/').Skip(1)) : Path);
    }

    public IReadOnlyList<Request> Requests => _requests.ToArray();

    public void ClearRequests() => _requests.Clear();

    /// <summary>A connection cut after the file's byte <see cref="Offset"/> (in the file, whatever the Range), <see cref="Times"/> times.</summary>
    public sealed class Cut(long offset, int times)
    {
        public long Offset { get; } = offset;
        public int Times = times;
    }

    /// <summary>Faults by file content's sha256 (LFS) or git path: connections cut, bytes flipped.</summary>
    public ConcurrentDictionary<string, Cut> Cuts { get; } = new();
    public ConcurrentDictionary<string, bool> Corrupt { get; } = new();
    /// <summary>Milliseconds to wait after each 16 KiB of a body (to make two downloads overlap).</summary>
    public int SlowBodyMs { get; set; }

    public sealed class Repo
    {
        public required string Id { get; init; }
        public bool Gated { get; init; }
        public ConcurrentDictionary<string, IReadOnlyDictionary<string, byte[]>> Commits { get; } = new();
        public ConcurrentDictionary<string, string> Refs { get; } = new();
    }

    /// <summary>Adds a repository whose main branch holds <paramref name="files"/>; returns the commit.</summary>
    public string AddRepo(string id, IReadOnlyDictionary<string, byte[]> files, bool gated = false)
    {
        _repos.GetOrAdd(id, _ => new Repo { Id = id, Gated = gated });
        return AddCommit(id, files, "main");
    }

    /// <summary>A new commit of <paramref name="files"/>, pointed at by <paramref name="refName"/> (a branch or tag) if given.</summary>
    public string AddCommit(string id, IReadOnlyDictionary<string, byte[]> files, string? refName)
    {
        var repo = _repos[id];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha.AppendData(Encoding.UTF8.GetBytes(id + repo.Commits.Count));
        foreach (var (name, bytes) in files.OrderBy(f => f.Key, StringComparer.Ordinal)) { sha.AppendData(Encoding.UTF8.GetBytes(name)); sha.AppendData(bytes); }
        string commit = Convert.ToHexStringLower(sha.GetHashAndReset());
        repo.Commits[commit] = new Dictionary<string, byte[]>(files);
        foreach (var (name, bytes) in files) if (IsLfs(name)) _lfs[Sha256(bytes)] = bytes;
        if (refName != null) repo.Refs[refName] = commit;
        return commit;
    }

    public Repo RepoOf(string id) => _repos[id];

    /// <summary>A renamed repository: its old id redirects (relative 307) to the new one, as the Hub does.</summary>
    public void AddAlias(string oldId, string newId) => _aliases[oldId] = newId;

    public static bool IsLfs(string file) =>
        new[] { ".safetensors", ".bin", ".onnx", ".h5", ".msgpack", ".pt" }.Any(e => file.EndsWith(e, StringComparison.Ordinal));

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The git blob id: sha1 of "blob {length}\0" followed by the content.</summary>
    public static string GitSha1(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    /// <summary>The blob name huggingface_hub gives a file: the sha256 of an LFS file, the git sha1 of another.</summary>
    public static string EtagOf(string file, byte[] bytes) => IsLfs(file) ? Sha256(bytes) : GitSha1(bytes);

    /// <summary>The key of <see cref="Cuts"/> and <see cref="Corrupt"/> for a file: an LFS file's sha256 (its CDN
    /// object), another file's path.</summary>
    public static string FaultKey(string file, byte[] bytes) => IsLfs(file) ? Sha256(bytes) : file;

    async Task Respond(string head, NetworkStream stream, TcpClient client, CancellationToken stop)
    {
        var lines = head[..head.IndexOf("\r\n\r\n", StringComparison.Ordinal)].Split("\r\n");
        var first = lines[0].Split(' ');
        var headers = lines.Skip(1).Where(l => l.Contains(':'))
            .GroupBy(l => l[..l.IndexOf(':')].Trim(), StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.First()[(g.First().IndexOf(':') + 1)..].Trim(), StringComparer.OrdinalIgnoreCase);
        var request = new Request(first[0], headers.GetValueOrDefault("Host") ?? "", first[1], headers.GetValueOrDefault("Range"), headers.GetValueOrDefault("Authorization"));
        _requests.Enqueue(request);
        await Answer(stream, client, request, stop);
    }

    sealed record Response(int Status, Dictionary<string, string> Headers, byte[] Body, string? FaultKey = null, long BodyOffset = 0);

    async Task Answer(NetworkStream stream, TcpClient client, Request request, CancellationToken stop)
    {
        var r = Route(request);
        bool head = request.Method == "HEAD";
        var body = r.Body;
        long cutAt = long.MaxValue;
        if (!head && r.FaultKey != null)
        {
            if (Corrupt.ContainsKey(r.FaultKey) && body.Length > 0)
            {
                body = (byte[])body.Clone();
                body[body.Length / 2] ^= 0x5A;
            }
            if (Cuts.TryGetValue(r.FaultKey, out var cut) && Interlocked.Decrement(ref cut.Times) >= 0)
                cutAt = Math.Max(0, cut.Offset - r.BodyOffset);
        }
        var text = new StringBuilder($"HTTP/1.1 {r.Status} {Reason(r.Status)}\r\n");
        foreach (var (k, v) in r.Headers) text.Append($"{k}: {v}\r\n");
        text.Append($"Content-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text.ToString()), stop);
        if (!head)
        {
            int sent = 0;
            while (sent < body.Length)
            {
                int n = (int)Math.Min(Math.Min(16384, body.Length - sent), cutAt - sent);
                if (n <= 0)
                {
                    // Cut: the connection closes with the body short of its Content-Length.
                    await stream.FlushAsync(stop);
                    client.Client.Close();
                    return;
                }
                await stream.WriteAsync(body.AsMemory(sent, n), stop);
                sent += n;
                if (SlowBodyMs > 0) await Task.Delay(SlowBodyMs, stop);
            }
        }
        await stream.FlushAsync(stop);
        client.Client.Shutdown(SocketShutdown.Send);
    }

    static string Reason(int status) => status switch
    {
        200 => "OK", 206 => "Partial Content", 302 => "Found", 307 => "Temporary Redirect", 401 => "Unauthorized",
        403 => "Forbidden", 404 => "Not Found", 416 => "Range Not Satisfiable", _ => "Status",
    };

    static Response Error(int status, string code, string message, string? commit = null)
    {
        var h = new Dictionary<string, string> { ["X-Error-Code"] = code, ["X-Error-Message"] = message };
        if (commit != null) h["X-Repo-Commit"] = commit;
        return new Response(status, h, Encoding.UTF8.GetBytes(message));
    }

    Response Route(Request request)
    {
        string path = request.Path.Split('?')[0];
        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            string sha = path["/cdn/".Length..];
            return _lfs.TryGetValue(sha, out var lfsBytes) ? Ranged(request, lfsBytes, new(), sha) : new Response(404, new(), "no such object"u8.ToArray());
        }
        int at = path.IndexOf("/resolve/", StringComparison.Ordinal);
        if (at < 0) return new Response(404, new(), "not a resolve URL"u8.ToArray());
        string id = path[1..at];
        var rest = path[(at + "/resolve/".Length)..].Split('/');
        string revision = Uri.UnescapeDataString(rest[0]);
        string file = string.Join('/', rest.Skip(1).Select(Uri.UnescapeDataString));
        if (_aliases.TryGetValue(id, out var moved))
            return new Response(307, new() { ["Location"] = $"/{moved}/resolve/{rest[0]}/{string.Join('/', rest.Skip(1))}" }, []);
        string? token = request.Authorization is { } a && a.StartsWith("Bearer ", StringComparison.Ordinal) ? a["Bearer ".Length..] : null;
        if (!_repos.TryGetValue(id, out var repo))
            return token is null
                ? Error(401, "RepoNotFound", "Invalid username or password.")
                : Error(404, "RepoNotFound", "Repository not found");
        if (repo.Gated && token != Token)
            return token is null
                ? Error(401, "GatedRepo", $"Access to model {id} is restricted. You must have access to it and be authenticated to access it. Please log in.")
                : Error(403, "GatedRepo", $"Access to model {id} is restricted and you are not in the authorized list.");
        string? commit = repo.Refs.TryGetValue(revision, out var c) ? c : repo.Commits.ContainsKey(revision) ? revision : null;
        if (commit is null) return Error(404, "RevisionNotFound", $"Invalid rev id: {revision}");
        if (!repo.Commits[commit].TryGetValue(file, out var bytes)) return Error(404, "EntryNotFound", $"Entry not found", commit);
        if (IsLfs(file))
        {
            string sha = Sha256(bytes);
            return new Response(302, new()
            {
                ["Location"] = $"http://{CdnAuthority}/cdn/{sha}?X-Amz-Signature=fake",
                ["X-Repo-Commit"] = commit,
                ["X-Linked-Etag"] = $"\"{sha}\"",
                ["X-Linked-Size"] = bytes.Length.ToString(),
                ["ETag"] = "W/\"not-the-file-etag\"",
            }, []);
        }
        return Ranged(request, bytes, new() { ["X-Repo-Commit"] = commit, ["ETag"] = $"\"{GitSha1(bytes)}\"" }, file);
    }

    static Response Ranged(Request request, byte[] bytes, Dictionary<string, string> headers, string faultKey)
    {
        if (request.Range is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-')
            && long.TryParse(range["bytes=".Length..^1], out long from))
        {
            if (from >= bytes.Length)
                return new Response(416, new(headers) { ["Content-Range"] = $"bytes */{bytes.Length}" }, []);
            return new Response(206, new(headers) { ["Content-Range"] = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}" }, bytes[(int)from..], faultKey, from);
        }
        return new Response(200, headers, bytes, faultKey);
    }

    public void Dispose() => _server.Dispose();
}
