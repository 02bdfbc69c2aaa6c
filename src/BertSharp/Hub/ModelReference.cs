using System.Text.RegularExpressions;
using BertSharp.Checkpoints;

namespace BertSharp.Hub;

/// <summary>
/// What a model argument names: a local folder (an existing directory always wins), or a Hub model id
/// <c>name</c>, <c>org/name</c> or <c>org/name@revision</c> (a branch, a tag or a commit hash; default "main").
/// Ids are checked with huggingface_hub's rules (validate_repo_id), so an id this accepts is one Python accepts.
/// </summary>
public sealed record ModelReference
{
    /// <summary>The folder, as given, when the reference is a local folder; else null.</summary>
    public string? Folder { get; private init; }

    /// <summary>The Hub repository id (<c>name</c> or <c>org/name</c>) when the reference is a Hub id; else null.</summary>
    public string? RepoId { get; private init; }

    /// <summary>The branch, tag or commit asked for ("main" unless the id says <c>@revision</c>).</summary>
    public string Revision { get; private init; } = DefaultRevision;

    public const string DefaultRevision = "main";

    public bool IsHubId => RepoId is not null;

    /// <summary><c>org/name</c>, or <c>org/name@revision</c> for a revision other than main; the folder for a folder.</summary>
    public override string ToString() => Folder ?? (Revision == DefaultRevision ? RepoId! : $"{RepoId}@{Revision}");

    /// <summary>Reads a model argument: an existing folder, else a Hub id; anything else is a one-line error
    /// that says it is neither.</summary>
    public static ModelReference Parse(string folderOrId)
    {
        if (string.IsNullOrWhiteSpace(folderOrId))
            throw new BertSharpException("give a model folder or a Hub model id (name, org/name or org/name@revision)");
        if (Directory.Exists(folderOrId)) return new ModelReference { Folder = folderOrId };
        if (File.Exists(folderOrId)) ModelFolder.RequireFolder(folderOrId);   // says it is a file
        int at = folderOrId.IndexOf('@');
        string id = at < 0 ? folderOrId : folderOrId[..at];
        string? revision = at < 0 ? DefaultRevision : folderOrId[(at + 1)..];
        string? problem = RepoIdProblem(id) ?? RevisionProblem(revision);
        if (problem != null)
            throw new BertSharpException($"{folderOrId}: model folder not found, and not a Hub model id ({problem})");
        return new ModelReference { RepoId = id, Revision = revision };
    }

    /// <summary>A Hub reference from its parts, checked as <see cref="Parse"/> checks them.</summary>
    public static ModelReference ForHub(string repoId, string revision = DefaultRevision)
    {
        if ((RepoIdProblem(repoId) ?? RevisionProblem(revision)) is { } problem)
            throw new BertSharpException($"{repoId}@{revision}: not a Hub model id ({problem})");
        return new ModelReference { RepoId = repoId, Revision = revision };
    }

    // huggingface_hub's REPO_ID_REGEX: an optional namespace, then a name of 1-96 characters of \w - . that starts
    // and ends with a word character.
    static readonly Regex RepoIdRegex = new(@"^(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b$");

    /// <summary>Why <paramref name="id"/> is not a Hub id by huggingface_hub's validate_repo_id, or null when it is one.</summary>
    internal static string? RepoIdProblem(string id)
    {
        if (id.Count(c => c == '/') > 1) return "an id is name or org/name";
        if (!RepoIdRegex.IsMatch(id)) return "an id uses letters, digits, '-', '_' and '.', does not start or end with '-' or '.', and has at most 96 characters";
        if (id.Contains("--") || id.Contains("..")) return "an id cannot contain '--' or '..'";
        if (id.EndsWith(".git", StringComparison.Ordinal)) return "an id cannot end in '.git'";
        return null;
    }

    /// <summary>Why <paramref name="revision"/> cannot be a branch, tag or commit (it also names a folder under
    /// refs/ in the cache, so it must stay inside it), or null.</summary>
    internal static string? RevisionProblem(string revision)
    {
        if (revision.Length == 0) return "nothing after '@': give a branch, tag or commit";
        if (revision.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '\\' or ':' or '~' or '^' or '?' or '*' or '['))
            return $"revision '{revision}' has a character a git ref cannot have";
        if (revision.StartsWith('/') || revision.EndsWith('/') || revision.Contains("//") || revision.Contains("..") || revision.Split('/').Any(p => p.StartsWith('.')))
            return $"revision '{revision}' is not a branch, tag or commit name";
        return null;
    }

    /// <summary>A full commit hash (40 lower-case hex digits), which names a snapshot folder directly.</summary>
    internal static bool IsCommitHash(string revision) => revision.Length == 40 && revision.All(char.IsAsciiHexDigitLower);
}
