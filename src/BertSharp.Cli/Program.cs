using BertSharp.Cli;
using BertSharp.Runtime;

// The command tunes its process before anything touches libtorch (see ProcessTuning); BERTSHARP_PROCESS_TUNING=off
// runs it as a library user's program runs.
if (Environment.GetEnvironmentVariable("BERTSHARP_PROCESS_TUNING") != "off") ProcessTuning.Apply();
return Cli.Run(args, Console.Out, Console.Error);
