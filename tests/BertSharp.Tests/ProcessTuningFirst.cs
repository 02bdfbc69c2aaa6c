using System.Runtime.CompilerServices;
using BertSharp.Runtime;

namespace BertSharp.Tests;

static class ProcessTuningFirst
{
    /// <summary>The test process is tuned as the `bert` command tunes its own, before any test touches libtorch, so the
    /// suite runs the code paths the command's users get whatever test runs first.</summary>
    [ModuleInitializer]
    internal static void Initialize() => ProcessTuning.Apply();
}
