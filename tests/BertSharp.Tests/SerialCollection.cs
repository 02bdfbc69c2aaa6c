namespace BertSharp.Tests;

/// <summary>
/// Tests that compare training runs for exact equality: libtorch's random generator is process-global, so a
/// test drawing from it in parallel (weight init, dropout) would change these runs' numbers. They run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "global torch RNG, run alone";
}
