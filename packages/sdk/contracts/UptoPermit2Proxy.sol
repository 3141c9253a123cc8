// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// The part of Permit2's SignatureTransfer the proxy calls: one transfer bound to a witness.
interface IPermit2SignatureTransfer {
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    struct PermitTransferFrom {
        TokenPermissions permitted;
        uint256 nonce;
        uint256 deadline;
    }

    struct SignatureTransferDetails {
        address to;
        uint256 requestedAmount;
    }

    function permitWitnessTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes32 witness,
        string calldata witnessTypeString,
        bytes calldata signature
    ) external;
}

/// @title UptoPermit2Proxy
/// @notice Tollway's local-chain stand-in for x402's `x402UptoPermit2Proxy`, with its ABI: the
/// spender a payer names in a Permit2 signature for the x402 `upto` scheme. The payer signs a
/// maximum and a witness naming the recipient and the one facilitator allowed to settle; that
/// facilitator then moves any amount up to the maximum, once (Permit2 spends the nonce). Tests
/// place its runtime code at the canonical address (0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002),
/// built with Permit2's canonical address as its constructor argument. Not for production.
contract UptoPermit2Proxy {
    struct Witness {
        address to;
        address facilitator;
        uint256 validAfter;
    }

    /// The witness part of Permit2's type string: the witness field, then the referenced types in
    /// alphabetical order, as EIP-712 encodes them.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";

    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,address facilitator,uint256 validAfter)");

    IPermit2SignatureTransfer public immutable PERMIT2;

    bool private transient entered;

    event Settled();

    error InvalidPermit2Address();
    error InvalidDestination();
    error InvalidOwner();
    error PaymentTooEarly();
    error AmountExceedsPermitted();
    error UnauthorizedFacilitator();
    error ReentrancyGuardReentrantCall();

    constructor(address permit2) {
        if (permit2 == address(0)) revert InvalidPermit2Address();
        PERMIT2 = IPermit2SignatureTransfer(permit2);
    }

    modifier nonReentrant() {
        if (entered) revert ReentrancyGuardReentrantCall();
        entered = true;
        _;
        entered = false;
    }

    /// Moves `amount` (at most what the payer permitted) from `owner` to the witness's recipient.
    /// Only the facilitator the witness names may call it, and not before `validAfter`.
    function settle(
        IPermit2SignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        if (amount > permit.permitted.amount) revert AmountExceedsPermitted();
        if (msg.sender != witness.facilitator) revert UnauthorizedFacilitator();
        if (block.timestamp < witness.validAfter) revert PaymentTooEarly();
        if (witness.to == address(0)) revert InvalidDestination();
        if (owner == address(0)) revert InvalidOwner();
        bytes32 witnessHash = keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.facilitator, witness.validAfter));
        PERMIT2.permitWitnessTransferFrom(
            permit,
            IPermit2SignatureTransfer.SignatureTransferDetails({to: witness.to, requestedAmount: amount}),
            owner,
            witnessHash,
            WITNESS_TYPE_STRING,
            signature
        );
        emit Settled();
    }
}
