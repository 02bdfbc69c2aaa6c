namespace BertSharp.Tests;

/// <summary>
/// Tests that replay a run exactly (resume = uninterrupted) depend on torch's one global random generator, which
/// any test training a model in parallel would advance; this collection runs alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SequentialCollection
{
    public const string Name = "sequential: exact replays of torch's global RNG";
}
