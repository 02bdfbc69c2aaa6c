using BertSharp.Data;

namespace BertSharp.Tests.Data;

public class SentenceSplitterTests
{
    [Theory]
    [InlineData("Hello world. This is a test.", new[] { "Hello world.", "This is a test." })]
    [InlineData("Really? Yes! Fine.", new[] { "Really?", "Yes!", "Fine." })]
    [InlineData("Wait... Then go.", new[] { "Wait...", "Then go." })]
    [InlineData("What?! No way.", new[] { "What?!", "No way." })]
    [InlineData("no punctuation here", new[] { "no punctuation here" })]
    [InlineData("  padded sentence.   ", new[] { "padded sentence." })]
    [InlineData("He was born in 1990. 2 years later he moved.", new[] { "He was born in 1990.", "2 years later he moved." })]
    [InlineData("It costs 3.5 dollars. Cheap.", new[] { "It costs 3.5 dollars.", "Cheap." })]
    [InlineData("This is fine. ok then.", new[] { "This is fine. ok then." })]
    [InlineData("Это тест. Второй тест.", new[] { "Это тест.", "Второй тест." })]
    [InlineData("你好. 世界.", new[] { "你好.", "世界." })]
    public void SplitsAtSentenceEnds(string text, string[] expected) =>
        Assert.Equal(expected, SentenceSplitter.Split(text));

    [Theory]
    [InlineData("Mr. Smith went to Washington. He met Dr. Jones there.", new[] { "Mr. Smith went to Washington.", "He met Dr. Jones there." })]
    [InlineData("Mrs. Brown and Prof. Green met St. Peter. It was odd.", new[] { "Mrs. Brown and Prof. Green met St. Peter.", "It was odd." })]
    [InlineData("Use tools, e.g. Hammers. Then stop.", new[] { "Use tools, e.g. Hammers.", "Then stop." })]
    [InlineData("Some fruit, i.e. Apples, were sold. Then more.", new[] { "Some fruit, i.e. Apples, were sold.", "Then more." })]
    [InlineData("The U.S. Army is large. It has many soldiers.", new[] { "The U.S. Army is large.", "It has many soldiers." })]
    [InlineData("He got a Ph.D. From Yale. Then he left.", new[] { "He got a Ph.D. From Yale.", "Then he left." })]
    [InlineData("J. R. R. Tolkien wrote books. He was British.", new[] { "J. R. R. Tolkien wrote books.", "He was British." })]
    [InlineData("Smith vs. Jones was decided. It was close.", new[] { "Smith vs. Jones was decided.", "It was close." })]
    [InlineData("Apples, pears, etc. Were sold. Then more.", new[] { "Apples, pears, etc. Were sold.", "Then more." })]
    [InlineData("He wore No. 5 for years. It was iconic.", new[] { "He wore No. 5 for years.", "It was iconic." })]
    [InlineData("He said no. Then he left.", new[] { "He said no.", "Then he left." })]
    [InlineData("Acme Inc. Was founded in Jan. 1990 by (Mr. Smith). Big.", new[] { "Acme Inc. Was founded in Jan. 1990 by (Mr. Smith).", "Big." })]
    [InlineData("Roe v. Wade was decided. Built c. 1500 by them. See p. 4 there.", new[] { "Roe v. Wade was decided.", "Built c. 1500 by them.", "See p. 4 there." })]
    [InlineData("Take vitamin b. Then rest.", new[] { "Take vitamin b.", "Then rest." })]
    public void DoesNotSplitAfterAbbreviationsOrInitials(string text, string[] expected) =>
        Assert.Equal(expected, SentenceSplitter.Split(text));

    [Theory]
    [InlineData("He said \"Stop.\" Then he left.", new[] { "He said \"Stop.\"", "Then he left." })]
    [InlineData("He said \"stop.\" then left.", new[] { "He said \"stop.\" then left." })]
    [InlineData("It was big (very big.) Then it shrank.", new[] { "It was big (very big.)", "Then it shrank." })]
    [InlineData("She wrote \u201CHi.\u201D Then she left.", new[] { "She wrote \u201CHi.\u201D", "Then she left." })]
    [InlineData("It ended. \"Why?\" he asked.", new[] { "It ended.", "\"Why?\" he asked." })]
    [InlineData("It ended. (See below.) Next.", new[] { "It ended.", "(See below.)", "Next." })]
    [InlineData("It ended. (see below) next.", new[] { "It ended. (see below) next." })]
    public void HandlesQuotesAndBrackets(string text, string[] expected) =>
        Assert.Equal(expected, SentenceSplitter.Split(text));

    [Theory]
    [InlineData(" It is closely related to the American lobster , H. americanus . It may grow to 60 cm . ",
        new[] { "It is closely related to the American lobster , H. americanus .", "It may grow to 60 cm ." })]
    [InlineData(" the lobsters are blue , only becoming \" lobster red \" on cooking . Mating occurs in summer . ",
        new[] { "the lobsters are blue , only becoming \" lobster red \" on cooking .", "Mating occurs in summer ." })]
    [InlineData(" He said \" It is over . \" Then he left . ",
        new[] { "He said \" It is over . \"", "Then he left ." })]
    [InlineData(" He left ( it was late . ) Then it rained . ",
        new[] { "He left ( it was late . )", "Then it rained ." })]
    [InlineData(" It was a <unk> . <unk> larvae hatch . [UNK] grow . ",
        new[] { "It was a <unk> .", "<unk> larvae hatch .", "[UNK] grow ." })]
    [InlineData(" weigh 0.7 – 2.2 kg . In 1990 , 20,000 were caught . ",
        new[] { "weigh 0.7 – 2.2 kg .", "In 1990 , 20,000 were caught ." })]
    [InlineData(" Mr. Smith arrived . Dr. Jones left . ",
        new[] { "Mr. Smith arrived .", "Dr. Jones left ." })]
    [InlineData(" He said \" First . Second . \" Then he left . ",
        new[] { "He said \" First .", "Second . \"", "Then he left ." })]
    [InlineData(" The song opens : \" Lyrics here . \" ", new[] { "The song opens : \" Lyrics here . \"" })]
    [InlineData(" ( First . Second . ) Then . ", new[] { "( First .", "Second . )", "Then ." })]
    [InlineData(" He said : \" She told me , ' Come tomorrow . ' \" Then he left . ",
        new[] { "He said : \" She told me , ' Come tomorrow . ' \"", "Then he left ." })]
    public void HandlesWikiTextSpacedStyle(string text, string[] expected) =>
        Assert.Equal(expected, SentenceSplitter.Split(text));

    [Fact]
    public void EmptyAndWhitespaceGiveNothing()
    {
        Assert.Empty(SentenceSplitter.Split(""));
        Assert.Empty(SentenceSplitter.Split("   \t "));
    }

    [Fact]
    public void LineBreaksInsideTextBecomeSpaces()
    {
        Assert.Equal(new[] { "A b.", "C d e." }, SentenceSplitter.Split("A b.\n  C d\r\ne."));
    }

    [Fact]
    public void AppendsToAnExistingList()
    {
        var list = new List<string> { "first." };
        SentenceSplitter.Split("Second. Third.", list);
        Assert.Equal(new[] { "first.", "Second.", "Third." }, list);
    }

    [Fact]
    public void PunctuationOnlyAndTrailingMarks()
    {
        Assert.Equal(new[] { "." }, SentenceSplitter.Split("."));
        Assert.Equal(new[] { "End. . ." }, SentenceSplitter.Split("End. . ."));
        Assert.Equal(new[] { "Is it A?", "B is next." }, SentenceSplitter.Split("Is it A? B is next."));
    }
}
