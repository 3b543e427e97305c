// The order of a class's tests: xUnit's own (a hash of each test's name), or, when VAUBAN_TEST_SHUFFLE holds a number, that order
// shuffled with the number as the seed. A class on a SharedServer runs its tests one after the other on one server: a test that
// depends on what another left there passes in one order and fails in another. For instance
// VAUBAN_TEST_SHUFFLE=7 bash tests/run.sh --filter "FullyQualifiedName~GuardTests".
using Xunit.Abstractions;
using Xunit.Sdk;

[assembly: TestCaseOrderer("Vauban.Tests.Infrastructure.TestOrder", "Vauban.Tests")]

namespace Vauban.Tests.Infrastructure;

public sealed class TestOrder(IMessageSink diagnostics) : ITestCaseOrderer
{
    private readonly DefaultTestCaseOrderer _xunit = new(diagnostics);

    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases) where TTestCase : ITestCase
    {
        var ordered = _xunit.OrderTestCases(testCases).ToList();
        if (!int.TryParse(Environment.GetEnvironmentVariable("VAUBAN_TEST_SHUFFLE"), out var seed)) return ordered;
        var random = new Random(seed);
        for (var i = ordered.Count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (ordered[i], ordered[j]) = (ordered[j], ordered[i]);
        }
        return ordered;
    }
}
