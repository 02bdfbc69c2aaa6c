using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Runtime.CompilerServices;

namespace BertSharp.Cli;

/// <summary>A command's description is one line, what a list of commands shows; the details of a command (file
/// formats, default columns, rules) follow the usual help of that command alone.</summary>
public static class CommandHelp
{
    static readonly ConditionalWeakTable<Command, string> Details = new();

    /// <summary>Shows <paramref name="details"/> (paragraphs separated by newlines) at the end of <paramref name="command"/>'s own --help.</summary>
    public static T WithDetails<T>(this T command, string details) where T : Command
    {
        Details.AddOrUpdate(command, details);
        return command;
    }

    /// <summary>Makes the help option of <paramref name="root"/> (which every command shares) print the details.</summary>
    public static void Install(RootCommand root)
    {
        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new DetailedHelp((SynchronousCommandLineAction)help.Action!);
    }

    sealed class DetailedHelp(SynchronousCommandLineAction help) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            int code = help.Invoke(parseResult);
            if (Details.TryGetValue(parseResult.CommandResult.Command, out var text))
            {
                var output = parseResult.InvocationConfiguration.Output;
                output.WriteLine("Details:");
                foreach (var paragraph in text.Split('\n', StringSplitOptions.RemoveEmptyEntries)) output.WriteLine("  " + paragraph);
                output.WriteLine();
            }
            return code;
        }
    }
}
