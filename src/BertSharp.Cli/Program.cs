using System.CommandLine;
using BertSharp;
using BertSharp.Cli;

return Cli.Run(args, Console.Out, Console.Error);
