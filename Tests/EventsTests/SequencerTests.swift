import Testing
@testable import Events

/// The order of events of one key, as AWS documents its `sequencer`.
@Suite struct SequencerTests {
    @Test func shorterSequencersArePaddedOnTheRightBeforeComparing() {
        #expect(Sequencer.compare("0055AED6DCD90281E5", "0055AED6DCD90281E5") == 0)
        #expect(Sequencer.compare("0055AED6DCD90281E5", "0055AED6DCD90281E6") < 0)
        // A longer sequencer adds finer digits: "0055AED6DCD90281E5" is "0055AED6DCD90281E500".
        #expect(Sequencer.compare("0055AED6DCD90281E5", "0055AED6DCD90281E501") < 0)
        #expect(Sequencer.compare("0055AED6DCD90281E5", "0055AED6DCD90281E500") == 0)
        #expect(Sequencer.compare("0055AED6DCD90282", "0055AED6DCD90281E5") > 0)
        #expect(Sequencer.compare("ab", "AB") == 0)
    }
}
