using System.Text.RegularExpressions;

namespace BertSharp.Hub;

/// <summary>
/// Where models come from and where they are kept: the Hub endpoint, the cache folder (Python's huggingface_hub
/// layout, shared with it), the access token and offline mode. <see cref="FromEnvironment()"/> reads them as
/// huggingface_hub does (<c>HF_ENDPOINT</c>, <c>HF_HUB_CACHE</c>, <c>HF_HOME</c>, <c>HF_TOKEN</c>,
/// <c>HF_HUB_OFFLINE</c>); a program or a test that wants other settings builds one with <c>with</c>.
/// </summary>
public sealed record HubOptions
{
    /// <summary>The public Hub, the default endpoint.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>The Hub's base URL, without a trailing slash; files are at <c>{Endpoint}/{repo}/resolve/{revision}/{file}</c>.</summary>
    public string Endpoint { get; init => field = value.TrimEnd('/'); } = DefaultEndpoint;

    /// <summary>The hub cache folder (holding <c>models--org--name/</c>).</summary>
    public required string CacheDir { get; init; }

    /// <summary>Sent as <c>Authorization: Bearer</c> to the endpoint (never to the CDN it redirects to); null: none.</summary>
    public string? Token { get; init; }

    /// <summary>Cache only: no network request at all.</summary>
    public bool Offline { get; init; }

    /// <summary>A download that receives nothing for this long is cut and retried (resuming).</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How many times a download cut short is resumed (with a Range request) before giving up, as
    /// huggingface_hub's five.</summary>
    public int ResumeRetries { get; init; } = 5;

    /// <summary>The wait before each resume attempt.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Receives one-line notes: a cached snapshot used because the Hub could not be reached or refused, a
    /// wait for another process downloading the same file. Null: none.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>The settings the environment gives, read as huggingface_hub reads them.</summary>
    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    internal static HubOptions FromEnvironment(Func<string, string?> getEnv)
    {
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string hfHome = ExpandPath(Env(getEnv, "HF_HOME") ?? Path.Combine(Env(getEnv, "XDG_CACHE_HOME") ?? Path.Combine(home, ".cache"), "huggingface"), getEnv, home);
        // HUGGINGFACE_HUB_CACHE is the legacy name; huggingface_hub still honours it below HF_HUB_CACHE.
        string cache = ExpandPath(Env(getEnv, "HF_HUB_CACHE") ?? Env(getEnv, "HUGGINGFACE_HUB_CACHE") ?? Path.Combine(hfHome, "hub"), getEnv, home);
        return new HubOptions
        {
            Endpoint = Env(getEnv, "HF_ENDPOINT") ?? DefaultEndpoint,
            CacheDir = Path.GetFullPath(cache),
            Token = Env(getEnv, "HF_TOKEN") ?? ReadTokenFile(ExpandPath(Env(getEnv, "HF_TOKEN_PATH") ?? Path.Combine(hfHome, "token"), getEnv, home)),
            Offline = IsTrue(Env(getEnv, "HF_HUB_OFFLINE") ?? Env(getEnv, "TRANSFORMERS_OFFLINE")),
        };
    }

    /// <summary>huggingface_hub's truth values: 1, ON, YES, TRUE in any case.</summary>
    internal static bool IsTrue(string? value) =>
        value is not null && value.ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    /// <summary>A variable set to the empty string counts as unset.</summary>
    static string? Env(Func<string, string?> getEnv, string name) => getEnv(name) is { Length: > 0 } v ? v : null;

    /// <summary>The token `hf auth login` saved (huggingface_hub reads it when HF_TOKEN is unset), or null.</summary>
    static string? ReadTokenFile(string path)
    {
        try { return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } t ? t : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Python's os.path.expandvars(os.path.expanduser(p)): a leading ~, then $NAME and ${NAME} (unset ones left as written).</summary>
    internal static string ExpandPath(string path, Func<string, string?> getEnv, string home)
    {
        if (path == "~" || path.StartsWith("~/") || path.StartsWith("~" + Path.DirectorySeparatorChar)) path = home + path[1..];
        return Regex.Replace(path, @"\$(\w+|\{[^}]*\})", m =>
        {
            string name = m.Groups[1].Value.Trim('{', '}');
            return getEnv(name) ?? m.Value;
        });
    }
}
