using BertSharp.Data;
using BertSharp.Hub;

namespace BertSharp.Cli;

/// <summary>A model argument of a command: a local folder, or a Hub id (<c>org/name[@revision]</c>) fetched into the
/// hub cache with the environment's settings (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE), its
/// download progress on stderr.</summary>
public static class ModelArgument
{
    public const string Help = "a model folder, or a Hub id: name, org/name or org/name@revision (fetched into the Hugging Face cache)";

    /// <summary>The local folder of <paramref name="folderOrId"/>.</summary>
    public static string Resolve(CommandContext ctx, string folderOrId) => Fetch(ctx, folderOrId) is { } s ? s.Folder : folderOrId;

    /// <summary>For a command that records its model (a training run's args.json): a folder as given; a Hub id,
    /// once fetched, as <c>org/name@commit</c>, which the library finds again in the cache without a request.</summary>
    public static string? Pin(CommandContext ctx, string? folderOrId) =>
        folderOrId is null ? null : Fetch(ctx, folderOrId) is { } s ? $"{s.Reference.RepoId}@{s.Commit}" : folderOrId;

    static HubSnapshot? Fetch(CommandContext ctx, string folderOrId)
    {
        var reference = ModelReference.Parse(folderOrId);
        if (!reference.IsHubId) return null;
        var options = HubOptions.FromEnvironment() with { Log = ctx.Err.WriteLine };
        return ModelSource.FetchAsync(reference, options, new DownloadProgressBar(ctx.Err)).GetAwaiter().GetResult();
    }
}
